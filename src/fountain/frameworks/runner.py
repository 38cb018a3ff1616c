"""The runner of one framework run (setup, engine rounds, Gen / GenLLM, salvage after a stop, the
end: rejects, export, manifest), and the entry points :func:`run_framework_async` and
:func:`run_framework`. Filter, Feedback and rating are its parts in :mod:`.filter_rounds`,
:mod:`.feedback` and :mod:`.rating`."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fountain import aio
from fountain.errors import FountainError, OutputError, PrivacyBudgetError
from fountain.frameworks.feedback import _FeedbackIterations
from fountain.frameworks.filter_rounds import _FilterRounds
from fountain.frameworks.plan import FrameworkPlan, plan_framework
from fountain.frameworks.rating import _Rating
from fountain.frameworks.records import (
    EMBEDDINGS_FILE,
    STATE_FILE,
    STATE_VERSION,
    _combine_stats,
    _embed_extra_missing,
    _is_framework_reject,
    _write_json_atomic,
    load_state,
)
from fountain.frameworks.rounds import _RoundEngine, genllm_spec
from fountain.generation.plan import SEED, Task, count_derivations
from fountain.generation.worker import resolve_mode
from fountain.run.engine import make_provider
from fountain.run.options import RunOptions, RunResult, effective_spec, output_folder
from fountain.run.outputs import DERIVATIONS_FILE, REJECTS_FILE, SEEDS_FILE
from fountain.spec.directions import distinct_directions
from fountain.types import Sample


class _Runner(_FilterRounds, _FeedbackIterations, _Rating):
    """One framework run: its setup, engine rounds, Gen / GenLLM and end; Filter, Feedback and
    rating come from the mixins of :mod:`.filter_rounds`, :mod:`.feedback` and :mod:`.rating`."""

    def __init__(self, plan: FrameworkPlan, options: RunOptions, provider: Any, embedder: Any, noise_rng: Any):
        self.plan = plan
        self.source = plan.spec
        self.framework = plan.framework
        multi = plan.framework in ("Filter", "Feedback")
        # Filter and Feedback count accepted conversations themselves: the engine must not stop
        # a round at a target.
        self.options = replace(options, target=None) if multi else options
        effective = effective_spec(self.source, self.options)
        if multi and effective.generation.target is not None:
            effective = replace(effective, generation=replace(effective.generation, target=None))
        if plan.framework == "GenLLM":
            effective = genllm_spec(effective)
        self.effective = effective
        self.output_dir = output_folder(effective, options)
        self.provider = provider
        self.own_provider = provider is None
        self.given_embedder = embedder
        self.noise_rng = noise_rng
        self.embedder = None  # the raw embedder (private data goes through this one only)
        self.synthetic_embedder = None  # cached (persisted) embeddings of synthetic conversations
        self.warnings: list[str] = list(plan.notes)
        self.results: list[RunResult] = []
        self.stats: list[Any] = []
        self.state: dict[str, Any] = {}
        self.resuming = False
        self.started = time.monotonic()
        self.framework_rejects: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {"name": plan.framework, "rater": plan.rater, "overrides": plan.overrides}
        self._private = None
        self._rf = None
        self.ledger = None
        self.seeds_requested = 0
        self.variations_planned = 0
        self.partial: list[str] | None = None  # ids of the dataset so far (Filter, Feedback)
        self.embed_missing: str | None = None  # the embed extra's missing package (_prepare_embedder)
        self.round_begun = False  # an engine round of this invocation has started (manifest.begin)

    # --- setup -----------------------------------------------------------------------------------

    def _check_output(self) -> None:
        from fountain.providers.cache import public_identity
        from fountain.run.manifest import check_resume

        decision = check_resume(
            self.output_dir, self.source, self.options.resume, provider=public_identity(self.provider.identity())
        )
        self.resuming = decision.resuming
        state = load_state(self.output_dir) if self.resuming else None
        if state is not None and state.get("framework") != self.framework:
            raise OutputError(
                f"{STATE_FILE} belongs to a {state.get('framework')} run, this is {self.framework}",
                location=str(self.output_dir / STATE_FILE),
                hint="write this run elsewhere with --output",
            )
        self.state = state or {
            "version": STATE_VERSION,
            "framework": self.framework,
            "rater": self.plan.rater,
            "rounds": [],
            "ledger": [],
        }
        if self.plan.privacy is not None and self.state.get("delta") not in (None, self.plan.privacy.delta):
            raise PrivacyBudgetError(
                "the privacy plan changed since this run started (delta "
                f"{self.state['delta']:.3g} then, {self.plan.privacy.delta:.3g} now: the real data changed?)",
                location=str(self.output_dir / STATE_FILE),
                hint="the ledger is kept for one private dataset and one delta: write a new run with --output",
            )

    def _embedding_dedup(self) -> bool:
        settings = self.source.raters.dedup
        return bool(settings.enabled and settings.embedding_threshold is not None)

    def _prepare_embedder(self) -> None:
        """Check, before any token is spent, that the embedder can be had; load it now only when it
        is certainly needed (a rater) or was named (--embedder: its errors come first). The default
        one for dedup loads lazily, once the embedding stage has 2 or more candidates left."""
        from fountain.embed.embedder import BUNDLED_ALIASES

        if not (self.plan.rater or self._embedding_dedup()) or self.given_embedder is not None:
            return
        missing = _embed_extra_missing(self.plan.embedder)
        if missing and not self.plan.rater:
            # Without the embed extra the other dedup stages still run (_dedup says so).
            self.embed_missing = missing
            return
        if self.plan.rater or self.plan.embedder not in BUNDLED_ALIASES:
            self._load_embedder()

    def _load_embedder(self) -> None:
        """Load the embedder (once) and wrap it in the persisted cache for synthetic texts."""
        from fountain.embed.embedder import CachedEmbedder

        if self.embedder is not None:
            return
        embedder = self.given_embedder
        if embedder is None:
            from fountain.embed.embedder import load_embedder

            embedder = load_embedder(self.plan.embedder)
        while isinstance(embedder, CachedEmbedder):  # private texts must never meet a persisted cache
            embedder = embedder.embedder
        self.embedder = embedder
        if self.options.no_cache:
            self.synthetic_embedder = CachedEmbedder(embedder)
        else:
            self.synthetic_embedder = CachedEmbedder(embedder, self.output_dir / EMBEDDINGS_FILE, persist=True)

    def _close(self) -> None:
        if self.synthetic_embedder is not None:
            self.synthetic_embedder.close()

    async def run(self) -> RunResult:
        if self.provider is None:
            self.provider = make_provider(self.effective, self.options)
        try:
            self._check_output()
            self._prepare_embedder()
            if self.framework in ("Gen", "GenLLM"):
                return await self._gen()
            if self.framework == "Filter":
                return await self._filter()
            return await self._feedback()
        except BaseException as error:
            self._mark_ended(error)
            raise
        finally:
            self._close()
            if self.own_provider:
                await self.provider.aclose()

    # --- engine rounds ---------------------------------------------------------------------------

    def _engine(
        self, *, seeds: list[Task] | None = None, extra: Sequence[Task] = (), iteration: int = 0
    ) -> _RoundEngine:
        return _RoundEngine(
            self.effective,
            self.options,
            self.provider,
            source_spec=self.source,
            seeds=seeds,
            extra=extra,
            iteration=iteration,
            enrich_personas=self.plan.personas if self.framework == "GenLLM" else None,
            reuse_enrichment=self.resuming,
        )

    def _mark_ended(self, error: BaseException) -> None:
        """A run stopped after its last round (during dedup, rating or the export) is not
        completed: say so in the manifest, as the engine does for a stop during generation."""
        from fountain.run.manifest import Manifest

        if not self.round_begun:
            return  # this invocation wrote no run entry: the manifest is an earlier run's
        try:
            manifest = Manifest.read(self.output_dir)
            if manifest is None or manifest.status != "running":
                return  # the engine already recorded how its round ended
            if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
                manifest.end("stopped", reason="interrupted")
            elif isinstance(error, FountainError):
                manifest.end("stopped", reason=error.message)
            else:
                manifest.end("failed", reason=f"{type(error).__name__}: {error}")
            manifest.write(self.output_dir)
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    async def _run_engine(self, engine: _RoundEngine) -> RunResult:
        self.round_begun = True
        try:
            result = await engine.run()
        except BaseException:
            stats = getattr(engine, "stats", None)
            if stats is not None:
                self.stats.append(stats)
            self._salvage(sys.exc_info()[1])
            raise
        self._annotate_manifest()
        self.results.append(result)
        self.stats.append(result.stats)
        self.warnings.extend(w for w in result.warnings if w not in self.warnings)
        if getattr(engine, "enrichment", None) is not None:
            self.info["enrichment"] = engine.enrichment.summary()
        # Every engine run resumes the manifest: from now on this invocation counts as a resume.
        self.resuming = True
        return result

    def _salvage(self, error: BaseException | None) -> None:
        """After a stopped round: put the framework's rejects back into rejects.jsonl (the engine
        rewrote it without them) and, when the run stopped cleanly (budget, error rate...), make
        dataset.jsonl the framework's dataset so far instead of the engine's raw export. Best
        effort: the state file keeps everything a resume needs."""
        try:
            if isinstance(error, FountainError):
                if self.partial is not None:
                    samples = self._journal_samples()
                    dataset = [samples[i] for i in self.partial if i in samples]
                elif self.framework in ("Gen", "GenLLM"):
                    dataset, self.framework_rejects, _ = self._dedup_sync(list(self._journal_samples().values()))
                else:
                    dataset = None
                if dataset is not None:
                    self._export(dataset)
            self._write_rejects()
            self._annotate_manifest()
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    def _annotate_manifest(self) -> None:
        """Put the framework summary (with the run's overrides of setup.yaml, which `fountain
        status` needs to recognise the spec) into the manifest as soon as it exists."""
        from fountain.run.manifest import Manifest

        manifest = Manifest.read(self.output_dir)
        if manifest is not None:
            manifest.extra["framework"] = self.info
            manifest.write(self.output_dir)

    def _journal_samples(self) -> dict[str, Sample]:
        from fountain.run.journal import read_journal

        out: dict[str, Sample] = {}
        for name in (SEEDS_FILE, DERIVATIONS_FILE):
            for record in read_journal(self.output_dir / name).records:
                try:
                    sample = Sample.from_record(record)
                except (KeyError, TypeError, ValueError):
                    continue  # the engine reports damaged records when it reads them
                out.setdefault(sample.id, sample)
        return out

    def _save_state(self) -> None:
        if self.plan.privacy is not None:
            self.state["delta"] = self.plan.privacy.delta
        _write_json_atomic(self.output_dir / STATE_FILE, self.state)

    def _round(self, number: int) -> dict[str, Any] | None:
        for entry in self.state["rounds"]:
            if entry.get("round") == number:
                return entry
        return None

    # --- Gen / GenLLM ----------------------------------------------------------------------------

    async def _gen(self) -> RunResult:
        result = await self._run_engine(self._engine())
        self.seeds_requested = result.counts.get("seeds_requested", 0)
        kept, rejects, info = await self._dedup(result.samples)
        self.framework_rejects = rejects
        self.info["dedup"] = info
        return self._finish(kept)

    # --- the end ---------------------------------------------------------------------------------

    def _write_rejects(self) -> list[dict[str, Any]]:
        """rejects.jsonl = the engine's rejects, then the framework's (each once)."""
        from fountain.run.journal import read_journal, write_jsonl_atomic

        path = self.output_dir / REJECTS_FILE
        engine_rejects = [r for r in read_journal(path).records if not _is_framework_reject(r)]
        seen: set[tuple[str, str]] = set()
        ours = []
        for record in self.framework_rejects:
            key = (record["id"], record["reason"])
            if key not in seen:
                seen.add(key)
                ours.append(record)
        merged = engine_rejects + ours
        write_jsonl_atomic(path, merged)
        return merged

    def _export(self, dataset: list[Sample]) -> Path:
        from fountain.run.export import export_dataset

        fmt = self.options.format or getattr(self.effective.output, "format", None) or "messages"
        system = getattr(self.effective.output, "system_message", None)
        return export_dataset(dataset, self.output_dir, fmt, system_message=system)

    def _warn_empty(self, path: Path, rejects: list[dict[str, Any]]) -> None:
        """A run that ends with an empty dataset says so at once (in yellow on stderr, and in the
        result's warnings), with the reasons its conversations were rejected."""
        top = Counter(str(r.get("reason") or "?") for r in rejects).most_common(3)
        reasons = ", ".join(f"{reason} ({count})" for reason, count in top) or "none recorded"
        text = (
            f"the dataset is empty: {path.name} holds 0 records; every conversation was rejected or "
            f"none was generated. See {self.output_dir / REJECTS_FILE} (top reasons: {reasons})"
        )
        if text not in self.warnings:
            self.warnings.append(text)
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[yellow]warning: {escape(text)}[/]")

    def _finish(self, dataset: list[Sample]) -> RunResult:
        from fountain.run.manifest import Manifest

        rejects = self._write_rejects()
        path = self._export(dataset)
        everything = self._journal_samples()
        seeds = [s for s in everything.values() if s.provenance.kind == SEED]
        gen = self.effective.generation
        derivations_planned = (
            count_derivations(
                [len(s.turns) for s in seeds],
                len(distinct_directions(self.effective.derivational_directions)),
                gen.derivations_per_direction,
                max_prefix_turns=gen.max_prefix_turns,
                conversation_type=gen.type,
            )
            + self.variations_planned
        )
        counts = {
            "seeds_requested": self.seeds_requested,
            "derivations_planned": derivations_planned,
            "accepted": {"seed": len(seeds), "derivation": len(everything) - len(seeds)},
            "rejected": dict(sorted(Counter(r["reason"] for r in rejects).items())),
            "dataset_records": len(dataset),
        }
        manifest = Manifest.read(self.output_dir)
        manifest_path = None
        if manifest is not None:
            if self.results:
                manifest.counts.update(counts)
            else:
                counts = {**manifest.counts, "dataset_records": len(dataset)}
            manifest.extra["framework"] = self.info
            privacy = self.privacy_section()
            if privacy is not None:
                manifest.privacy = privacy
            # Only now, with dedup, rating and the export done, is the run completed (the rounds
            # left it running). The time after the rounds (embedder, dedup) counts too.
            if manifest.runs and manifest.runs[-1].get("status") == "running":
                engine_time = sum(r.elapsed_s for r in self.results)
                manifest.end("completed", session_elapsed_s=max(0.0, time.monotonic() - self.started - engine_time))
            else:
                manifest.status, manifest.stop_reason = "completed", None
            manifest_path = manifest.write(self.output_dir)
        if not dataset:
            self._warn_empty(path, rejects)
        last = self.results[-1] if self.results else None
        mode = last.mode if last is not None else resolve_mode(self.effective, self.provider.name, self.options.mode)
        return RunResult(
            output_dir=self.output_dir,
            dataset_path=path,
            dataset_records=len(dataset),
            samples=list(dataset),
            counts=counts,
            retries=sum(r.retries for r in self.results),
            stats=_combine_stats(self.stats),
            elapsed_s=time.monotonic() - self.started,
            warnings=list(self.warnings),
            stopped=None,
            manifest_path=manifest_path,
            resumed=self.resuming or bool(last and last.resumed),
            mode=mode,
        )


# --- entry points ---------------------------------------------------------------------------------


async def run_framework_async(
    spec: Any, options: RunOptions | None = None, *, provider: Any = None, embedder: Any = None, noise_rng: Any = None
) -> RunResult:
    """Run ``spec`` with its framework (``options.framework`` > ``spec.framework`` > Gen).

    ``provider`` overrides the one the spec and options name (tests pass a fake); ``embedder``
    any :class:`~fountain.embed.embedder.Embedder` (default: ``--embedder``, else the bundled one).
    ``noise_rng`` is for tests only: DP noise from a known seed carries no privacy guarantee.
    Returns the :class:`~fountain.run.engine.RunResult` of the whole run (its ``samples`` are the
    dataset); ``manifest.json`` holds the framework's summary and, for PE, the privacy ledger.
    """
    options = options or RunOptions()
    plan = plan_framework(spec, options)
    return await _Runner(plan, options, provider, embedder, noise_rng).run()


def run_framework(
    spec: Any, options: RunOptions | None = None, *, provider: Any = None, embedder: Any = None, noise_rng: Any = None
) -> RunResult:
    """Synchronous :func:`run_framework_async`."""
    return aio.run(run_framework_async(spec, options, provider=provider, embedder=embedder, noise_rng=noise_rng))
