"""The end of an engine round: what the round did (:class:`RoundEnd`, built by the engine), and
:func:`finish_round`, which rewrites the journals in plan order and writes the manifest's counts,
output and status from it. Data flows one way: the engine hands its end over, finish reads
nothing else of it. A round never exports: the framework runner decides the dataset after
rating and exports it once (:mod:`fountain.frameworks.runner`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.run.export import drop_stale_dataset
from fountain.run.options import RunResult
from fountain.run.outputs import DATASET_FILES
from fountain.run.samples import ResultSamples, SampleIndex

if TYPE_CHECKING:  # pragma: no cover
    from fountain.run.manifest import Manifest


@dataclass(frozen=True)
class RoundEnd:
    """What one engine round did, as the engine hands it to :func:`finish_round`."""

    output_dir: Path
    samples: SampleIndex  # the accepted samples, indexed in the journals
    rejects: dict[str, tuple[str | None, int, int]]  # id -> (reason, offset, length) in rejects.jsonl
    sort_key: Callable[[str], tuple[Any, ...]]  # plan order of a sample id
    dataset_format: str  # messages | sharegpt | janus: the dataset file the runner will write
    mode: str
    seeds_requested: int
    derivations_planned: int
    target: int | None
    manifest: Manifest
    stats: Any  # fountain.providers.dispatch.RunStats of this session
    retries: int
    warnings: list[str]
    servers: list[dict[str, Any]] | None  # a fleet: what each server did this session
    started: float  # time.monotonic() at the round's start
    interrupted: bool
    crash: BaseException | None
    stop_error: FountainError | None
    judge: Any = None  # fountain.run.judging.RunJudge when the run has a judge

    def status(self) -> tuple[str, str | None]:
        """The manifest status the round leaves, and why: a completed round leaves ``running``
        (the runner completes the run after rating and the export)."""
        if self.crash is not None:
            return "failed", f"{type(self.crash).__name__}: {self.crash}"
        if self.interrupted:
            return "stopped", "interrupted"
        if self.stop_error is not None:
            return "stopped", self.stop_error.message
        return "running", None


def count_rejects(rejects: Iterable[tuple[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """``(id, reason)`` pairs of rejects.jsonl counted by reason: the rejected tasks, and the
    turn-by-turn utterances asked again (ids ``<task>~u<n>``), each sorted by reason."""
    rejected: dict[str, int] = {}
    utterances: dict[str, int] = {}
    for reject_id, reason in rejects:
        into = utterances if "~u" in str(reject_id) else rejected
        into[str(reason)] = into.get(str(reason), 0) + 1
    return dict(sorted(rejected.items())), dict(sorted(utterances.items()))


def finish_round(end: RoundEnd) -> RunResult:
    """Rewrite the journals in plan order and write the manifest.

    Streamed: the new journals are written next to the old ones, each line copied from where
    the index says it is; then the old files are closed and replaced."""
    parts, seeds, derivations, rejects = end.samples.rewrite_journals(end.output_dir, end.rejects, end.sort_key)
    dataset = end.output_dir / DATASET_FILES.get(end.dataset_format, DATASET_FILES["messages"])
    records = sum(len(offsets) - 1 for _, offsets in parts)
    rejected, utterances = count_rejects((i, end.rejects[i][0]) for i in rejects)
    counts: dict[str, Any] = {
        "seeds_requested": end.seeds_requested,
        "derivations_planned": end.derivations_planned,
        "accepted": {"seed": len(seeds), "derivation": len(derivations)},
        "rejected": rejected,
        "utterance_rejects": utterances,
        "dataset_records": records,
    }
    if end.target:
        counts["target"] = end.target  # --target: what count accuracy is measured against
    warnings = list(end.warnings)
    manifest = end.manifest
    manifest.counts.update(counts)
    removed = drop_stale_dataset(manifest, end.output_dir, dataset, end.dataset_format)
    if removed:
        warnings.append(removed)
    manifest.extra["output"] = {"format": end.dataset_format, "dataset": dataset.name, "mode": end.mode}
    if end.servers is not None:
        manifest.extra["servers"] = end.servers
    elapsed = time.monotonic() - end.started
    status, reason = end.status()
    manifest.end(status, reason=reason, stats=end.stats, session_elapsed_s=elapsed)
    if end.judge is not None:
        end.judge.finish(manifest)  # its session's cost and scores (fountain.run.judging)
    manifest_path = manifest.write(end.output_dir)
    return RunResult(
        output_dir=end.output_dir,
        dataset_path=dataset,
        dataset_records=records,
        samples=ResultSamples(parts),
        counts=counts,
        retries=end.retries,
        stats=end.stats,
        elapsed_s=elapsed,
        warnings=warnings,
        stopped=end.stop_error,
        manifest_path=manifest_path,
        resumed=bool(manifest.runs[:-1]),
        mode=end.mode,
        seed_turns=tuple(end.samples.entry(i).turns for i in seeds),
    )
