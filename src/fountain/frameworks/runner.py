"""The runner of one framework run: setup (resume check, embedder), the framework's rounds, and
the end it alone decides: rejects, export, manifest; after a stop, the salvage of what was made.
Entry points: :func:`run_framework_async` and :func:`run_framework` (what `fountain run` calls)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fountain import aio
from fountain.errors import FountainError, OutputError, PrivacyBudgetError
from fountain.frameworks.base import Framework
from fountain.frameworks.context import RunContext
from fountain.frameworks.edge_votes import uses_edges
from fountain.frameworks.embeddings import Embeddings
from fountain.frameworks.feedback import Feedback
from fountain.frameworks.filter import Filter
from fountain.frameworks.gen import Gen, GenLLM
from fountain.frameworks.plan import FrameworkPlan, plan_framework
from fountain.frameworks.privacy_account import PrivacyAccount
from fountain.frameworks.rating import Rating
from fountain.frameworks.records import STATE_FILE, _combine_stats, _is_framework_reject, load_state
from fountain.generation.plan import count_derivations
from fountain.generation.requests import resolve_mode
from fountain.run.engine import make_provider
from fountain.run.finish import count_rejects
from fountain.run.options import RunOptions, RunResult, dataset_format
from fountain.run.outputs import REJECTS_FILE
from fountain.spec.directions import distinct_directions
from fountain.types import Sample

#: The frameworks by name (the names of the original platform).
FRAMEWORK_CLASSES: dict[str, type[Framework]] = {cls.name: cls for cls in (Gen, GenLLM, Filter, Feedback)}


class Runner:
    """One framework run: builds the context, the framework and its rating, runs it, ends it."""

    def __init__(self, plan: FrameworkPlan, options: RunOptions, provider: Any, embedder: Any, noise_rng: Any):
        framework_cls = FRAMEWORK_CLASSES[plan.framework]
        self.ctx = ctx = RunContext(
            plan, options, provider, rounds=framework_cls.rounds, enriches=framework_cls.enriches
        )
        self.own_provider = provider is None
        self.resumed = False
        self.embeddings = Embeddings(ctx, embedder)
        self.rating = Rating(ctx, self.embeddings, noise_rng)
        self.privacy = PrivacyAccount(ctx)
        self.framework = framework_cls(ctx, self.rating, self.privacy)

    async def run(self) -> RunResult:
        ctx = self.ctx
        if ctx.provider is None:
            ctx.provider = make_provider(ctx.effective, ctx.options)
        try:
            self._check_output()
            settings = ctx.source.raters.dedup
            # With --edge the edges embed the private data: only dedup may need the embedder here.
            rates_here = bool(ctx.plan.rater) and not uses_edges(ctx.plan)
            self.embeddings.prepare(rates_here, bool(settings.enabled and settings.embedding_threshold is not None))
            dataset = await self.framework.run()
            return self._finish(dataset)
        except BaseException as error:
            if ctx.round_failed is error:
                self._salvage(error)
            self._mark_ended(error)
            raise
        finally:
            self.embeddings.close()
            if self.own_provider:
                await ctx.provider.aclose()

    # --- setup -----------------------------------------------------------------------------------

    def _check_output(self) -> None:
        from fountain.providers.cache import public_identity
        from fountain.run.resume import check_resume

        decision = check_resume(
            self.ctx.output_dir,
            self.ctx.source,
            self.ctx.options.export.resume,
            provider=public_identity(self.ctx.provider.identity()),
        )
        self.ctx.resuming = self.resumed = decision.resuming
        state = load_state(self.ctx.output_dir) if self.ctx.resuming else None
        if state is not None and state.get("framework") != self.framework.name:
            raise OutputError(
                f"{STATE_FILE} belongs to a {state.get('framework')} run, this is {self.framework.name}",
                location=str(self.ctx.output_dir / STATE_FILE),
                hint="write this run elsewhere with --output",
            )
        self.ctx.state = state or self.ctx.new_state()
        if self.ctx.plan.privacy is not None and self.ctx.state.get("delta") not in (None, self.ctx.plan.privacy.delta):
            raise PrivacyBudgetError(
                "the privacy plan changed since this run started (delta "
                f"{self.ctx.state['delta']:.3g} then, {self.ctx.plan.privacy.delta:.3g} now: the real data changed?)",
                location=str(self.ctx.output_dir / STATE_FILE),
                hint="the ledger is kept for one private dataset and one delta: write a new run with --output",
            )

    def _mark_ended(self, error: BaseException) -> None:
        """A run stopped after its last round (during dedup, rating or the export) is not
        completed: say so in the manifest, as the engine does for a stop during generation."""
        from fountain.run.manifest import Manifest

        if not self.ctx.round_begun:
            return  # this invocation wrote no run entry: the manifest is an earlier run's
        try:
            manifest = Manifest.read(self.ctx.output_dir)
            if manifest is None or manifest.status != "running":
                return  # the engine already recorded how its round ended
            if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
                manifest.end("stopped", reason="interrupted")
            elif isinstance(error, FountainError):
                manifest.end("stopped", reason=error.message)
            else:
                manifest.end("failed", reason=f"{type(error).__name__}: {error}")
            manifest.write(self.ctx.output_dir)
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    def _salvage(self, error: BaseException | None) -> None:
        """After a stopped round: put the framework's rejects back into rejects.jsonl (the engine
        rewrote it without them) and, when the run stopped cleanly (budget, error rate...), make
        dataset.jsonl the framework's dataset so far instead of the engine's raw export. Best
        effort: the state file keeps everything a resume needs."""
        try:
            if isinstance(error, FountainError):
                if self.ctx.partial is not None:
                    samples = self.ctx.journal_samples()
                    dataset = [samples[i] for i in self.ctx.partial if i in samples]
                elif not self.framework.rounds:
                    dataset, self.ctx.framework_rejects, _ = self.rating.dedup_sync(
                        list(self.ctx.journal_samples().values())
                    )
                else:
                    dataset = None
                if dataset is not None:
                    self._export(dataset)
            self._write_rejects()
            self.ctx.annotate_manifest()
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    # --- the end ---------------------------------------------------------------------------------

    def _write_rejects(self) -> list[dict[str, Any]]:
        """rejects.jsonl = the engine's rejects, then the framework's (each once)."""
        from fountain.run.atomic import write_jsonl_atomic
        from fountain.run.journal import read_journal

        path = self.ctx.output_dir / REJECTS_FILE
        engine_rejects = [r for r in read_journal(path).records if not _is_framework_reject(r)]
        seen: set[tuple[str, str]] = set()
        ours = []
        for record in self.ctx.framework_rejects:
            key = (record["id"], record["reason"])
            if key not in seen:
                seen.add(key)
                ours.append(record)
        merged = engine_rejects + ours
        write_jsonl_atomic(path, merged)
        return merged

    def _export(self, dataset: Sequence[Sample]) -> Path:
        from fountain.run.export import export_dataset

        fmt = dataset_format(self.ctx.effective, self.ctx.options)
        system = getattr(self.ctx.effective.output, "system_message", None)
        prefix_loss = self.ctx.options.export.prefix_loss or "keep"
        return export_dataset(dataset, self.ctx.output_dir, fmt, system_message=system, prefix_loss=prefix_loss)

    def _warn_empty(self, path: Path, rejects: list[dict[str, Any]]) -> None:
        """A run that ends with an empty dataset says so at once (in yellow on stderr, and in the
        result's warnings), with the reasons its conversations were rejected."""
        top = Counter(str(r.get("reason") or "?") for r in rejects).most_common(3)
        reasons = ", ".join(f"{reason} ({count})" for reason, count in top) or "none recorded"
        text = (
            f"the dataset is empty: {path.name} holds 0 records; every conversation was rejected or "
            f"none was generated. See {self.ctx.output_dir / REJECTS_FILE} (top reasons: {reasons})"
        )
        if text not in self.ctx.warnings:
            self.ctx.warnings.append(text)
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[yellow]warning: {escape(text)}[/]")

    def _note_judge(self, section: Any) -> None:
        """A re-export that ran no round judged nothing: say so when another judge was asked."""
        from fountain.run.judge_config import reexport_note

        note = reexport_note(self.ctx.effective, self.ctx.options, self.ctx.provider, section)
        if note is not None and note not in self.ctx.warnings:
            self.ctx.warnings.append(note)

    def _finish(self, dataset: Sequence[Sample]) -> RunResult:
        """The end of a completed run: rejects, the export, the manifest completed."""
        from fountain.run.manifest import Manifest
        from fountain.run.review import dropped_ids

        rejects = self._write_rejects()
        path = self._export(dataset)
        dropped = dropped_ids(self.ctx.output_dir)  # the hand review's drops are not exported
        kept = [s for s in dataset if s.id not in dropped] if dropped else dataset
        written = len(kept)
        seed_turns, accepted = self.ctx.journal_tally()
        gen = self.ctx.effective.generation
        derivations_planned = (
            count_derivations(
                seed_turns,
                len(distinct_directions(self.ctx.effective.derivational_directions)),
                gen.derivations_per_direction,
                max_prefix_turns=gen.max_prefix_turns,
                conversation_type=gen.type,
            )
            + self.ctx.variations_planned
        )
        rejected, utterances = count_rejects((str(r.get("id")), r.get("reason")) for r in rejects)
        counts = {
            "seeds_requested": self.ctx.seeds_requested,
            "derivations_planned": derivations_planned,
            "accepted": {"seed": len(seed_turns), "derivation": accepted - len(seed_turns)},
            "rejected": rejected,
            "utterance_rejects": utterances,
            "dataset_records": written,
        }
        manifest = Manifest.read(self.ctx.output_dir)
        manifest_path = None
        if manifest is not None:
            if self.ctx.results:
                manifest.counts.update(counts)
            else:
                counts = {**manifest.counts, "dataset_records": written}
                self._note_judge(manifest.extra.get("judge"))
            manifest.extra["framework"] = self.ctx.info
            privacy = self.privacy.section()
            if privacy is not None:
                manifest.privacy = privacy
            # Only now, with dedup, rating and the export done, is the run completed (the rounds
            # left it running). The time after the rounds (embedder, dedup) counts too.
            if manifest.runs and manifest.runs[-1].get("status") == "running":
                engine_time = sum(r.elapsed_s for r in self.ctx.results)
                manifest.end("completed", session_elapsed_s=max(0.0, time.monotonic() - self.ctx.started - engine_time))
            else:
                manifest.status, manifest.stop_reason = "completed", None
            manifest_path = manifest.write(self.ctx.output_dir)
        if not dataset:
            self._warn_empty(path, rejects)
        last = self.ctx.results[-1] if self.ctx.results else None
        mode = (
            last.mode
            if last is not None
            else resolve_mode(self.ctx.effective, self.ctx.provider.name, self.ctx.options.generation.mode)
        )
        return RunResult(
            output_dir=self.ctx.output_dir,
            dataset_path=path,
            dataset_records=written,
            samples=kept,
            counts=counts,
            retries=sum(r.retries for r in self.ctx.results),
            stats=_combine_stats(self.ctx.stats),
            elapsed_s=time.monotonic() - self.ctx.started,
            warnings=list(self.ctx.warnings),
            stopped=None,
            manifest_path=manifest_path,
            resumed=self.resumed,  # this invocation continued an earlier one (not: ran several rounds)
            mode=mode,
        )


# --- entry points ---------------------------------------------------------------------------------


async def run_framework_async(
    spec: Any, options: RunOptions | None = None, *, provider: Any = None, embedder: Any = None, noise_rng: Any = None
) -> RunResult:
    """Run ``spec`` with its framework (``options.rating.framework`` > ``spec.framework`` > Gen).

    ``provider`` overrides the one the spec and options name (tests pass a fake); ``embedder``
    any :class:`~fountain.embed.embedder.Embedder` (default: ``--embedder``, else the bundled one).
    ``noise_rng`` is for tests only: DP noise from a known seed carries no privacy guarantee.
    Returns the :class:`~fountain.run.engine.RunResult` of the whole run (its ``samples`` are the
    dataset); ``manifest.json`` holds the framework's summary and, for PE, the privacy ledger.
    """
    options = options or RunOptions()
    plan = plan_framework(spec, options)
    return await Runner(plan, options, provider, embedder, noise_rng).run()


def run_framework(
    spec: Any, options: RunOptions | None = None, *, provider: Any = None, embedder: Any = None, noise_rng: Any = None
) -> RunResult:
    """Synchronous :func:`run_framework_async`."""
    return aio.run(run_framework_async(spec, options, provider=provider, embedder=embedder, noise_rng=noise_rng))
