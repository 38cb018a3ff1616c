"""What one framework run shares between its stages: the plan, the options, the output folder,
the state file, the rounds run so far and the framework's rejects. An explicit object handed to
the framework, its rating and its privacy account (instead of state shared through mixins)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fountain.frameworks.plan import FrameworkPlan
from fountain.frameworks.records import STATE_FILE, STATE_VERSION, _write_json_atomic
from fountain.frameworks.rounds import RoundEngine, genllm_spec
from fountain.run.options import RunOptions, RunResult, effective_spec, output_folder
from fountain.run.outputs import DERIVATIONS_FILE, SEEDS_FILE
from fountain.spec.model import Spec
from fountain.types import Sample


class RunContext:
    """The shared state of one framework run. ``rounds``: the framework counts its accepted
    conversations itself (Filter, Feedback), so an engine round never stops at a target;
    ``enriches``: GenLLM's scene enrichment comes first."""

    def __init__(self, plan: FrameworkPlan, options: RunOptions, provider: Any, *, rounds: bool, enriches: bool):
        self.plan = plan
        self.source: Spec = plan.spec
        self.options = options.with_(target=None) if rounds else options
        effective = effective_spec(self.source, self.options)
        if rounds and effective.generation.target is not None:
            effective = replace(effective, generation=replace(effective.generation, target=None))
        if enriches:
            effective = genllm_spec(effective)
        self.effective: Spec = effective
        self.enriches = enriches
        self.output_dir: Path = output_folder(effective, options)
        self.provider = provider
        self.warnings: list[str] = list(plan.notes)
        self.results: list[RunResult] = []
        self.stats: list[Any] = []
        self.state: dict[str, Any] = {}
        self.resuming = False
        self.started = time.monotonic()
        self.framework_rejects: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {"name": plan.framework, "rater": plan.rater, "overrides": plan.overrides}
        self.seeds_requested = 0
        self.variations_planned = 0
        self.partial: list[str] | None = None  # ids of the dataset so far (Filter, Feedback)
        self.round_begun = False  # an engine round of this invocation has started (manifest.begin)
        self.round_failed: BaseException | None = None  # the error that stopped an engine round

    # --- engine rounds ---------------------------------------------------------------------------

    def engine(self, *, seeds: list[Any] | None = None, extra: Sequence[Any] = (), iteration: int = 0) -> RoundEngine:
        return RoundEngine(
            self.effective,
            self.options,
            self.provider,
            source_spec=self.source,
            seeds=seeds,
            extra=extra,
            iteration=iteration,
            enrich_personas=self.plan.personas if self.enriches else None,
            reuse_enrichment=self.resuming,
        )

    async def run_round(
        self, *, seeds: list[Any] | None = None, extra: Sequence[Any] = (), iteration: int = 0
    ) -> RunResult:
        """Run one engine round into the output folder (the journals only: the runner exports)."""
        engine = self.engine(seeds=seeds, extra=extra, iteration=iteration)
        self.round_begun = True
        try:
            result = await engine.run()
        except BaseException:
            stats = getattr(engine, "stats", None)
            if stats is not None:
                self.stats.append(stats)
            if getattr(engine, "manifest", None) is not None:
                # The round wrote into the folder (its manifest first): the runner salvages what
                # it made. A round that stopped before (Ray missing, a bad --cache) left the
                # folder as it was, and nothing is exported into it.
                self.round_failed = sys.exc_info()[1]
            raise
        self.annotate_manifest()
        self.results.append(result)
        self.stats.append(result.stats)
        self.warnings.extend(w for w in result.warnings if w not in self.warnings)
        if engine.enrichment is not None:
            self.info["enrichment"] = engine.enrichment.summary()
        # Every engine run resumes the manifest: from now on this invocation counts as a resume.
        self.resuming = True
        return result

    def annotate_manifest(self) -> None:
        """Put the framework summary (with the run's overrides of setup.yaml, which `fountain
        status` needs to recognise the spec) into the manifest as soon as it exists."""
        from fountain.run.manifest import Manifest

        manifest = Manifest.read(self.output_dir)
        if manifest is not None:
            manifest.extra["framework"] = self.info
            manifest.write(self.output_dir)

    # --- the output folder -----------------------------------------------------------------------

    def journal_samples(self) -> dict[str, Sample]:
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

    def journal_tally(self) -> tuple[list[int], int]:
        """The turn counts of the accepted seeds, and how many samples were accepted (each id
        once), streamed from the journals: what the end of a run counts, without holding the
        samples (:meth:`journal_samples` reads them all). After a round of this run, the round's
        own tally: the journals are the ones it rewrote from its index (nothing writes them
        after the last round)."""
        last = self.results[-1] if self.results else None
        if last is not None and last.seed_turns is not None:
            return list(last.seed_turns), last.dataset_records
        from fountain.generation.plan import SEED
        from fountain.run.journal import scan_journal

        seen: set[str] = set()
        seed_turns: list[int] = []
        for name in (SEEDS_FILE, DERIVATIONS_FILE):
            for line in scan_journal(self.output_dir / name):
                try:
                    sample = Sample.from_record(line.record)
                except (KeyError, TypeError, ValueError):
                    continue  # the engine reports damaged records when it reads them
                if sample.id in seen:
                    continue
                seen.add(sample.id)
                if sample.provenance.kind == SEED:
                    seed_turns.append(len(sample.turns))
        return seed_turns, len(seen)

    def new_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "framework": self.plan.framework,
            "rater": self.plan.rater,
            "rounds": [],
            "ledger": [],
        }

    def save_state(self) -> None:
        if self.plan.privacy is not None:
            self.state["delta"] = self.plan.privacy.delta
        _write_json_atomic(self.output_dir / STATE_FILE, self.state)

    def round(self, number: int) -> dict[str, Any] | None:
        """The recorded entry of round (iteration) ``number``, if any."""
        for entry in self.state["rounds"]:
            if entry.get("round") == number:
                return entry
        return None

    def record_round(self, entry: dict[str, Any]) -> None:
        """Replace round ``entry["round"]``'s record with ``entry`` and save the state."""
        number = entry["round"]
        self.state["rounds"] = [e for e in self.state["rounds"] if e.get("round") != number] + [entry]
        self.save_state()
