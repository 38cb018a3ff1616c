"""The end of an engine round: the journals rewritten in plan order, the dataset exported (a
final round) and the manifest's counts, output and status written."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fountain.run.export import drop_stale_dataset
from fountain.run.options import RunResult
from fountain.run.outputs import DATASET_FILES
from fountain.run.samples import ResultSamples, journal_lines

if TYPE_CHECKING:  # pragma: no cover
    from fountain.run.engine import Engine


def finish_round(engine: Engine, started: float, interrupted: bool) -> RunResult:
    """Rewrite the journals in plan order, export the dataset, write the manifest.

    Streamed: the new journals are written next to the old ones, each line copied from where
    the index says it is; then the old files are closed and replaced, and the dataset is
    exported from the new journals."""
    from fountain.run.export import export_lines

    parts, seeds, derivations, rejects = engine.samples.rewrite_journals(
        engine.output_dir, engine.rejects, engine.sort_key
    )
    fmt = engine.options.format or getattr(engine.spec.output, "format", None) or "messages"
    system = getattr(engine.spec.output, "system_message", None)
    if engine.final:
        dataset, records = export_lines(
            journal_lines(parts),
            engine.output_dir,
            fmt,
            system_message=system,
            prefix_loss=engine.options.prefix_loss or "keep",
        )
    else:
        dataset = engine.output_dir / DATASET_FILES.get(fmt, DATASET_FILES["messages"])
        records = sum(len(offsets) - 1 for _, offsets in parts)

    rejected: dict[str, int] = {}
    utterances: dict[str, int] = {}  # turn-by-turn utterances asked again (ids "<task>~u<n>")
    for sample_id in rejects:
        reject_reason = str(engine.rejects[sample_id][0])
        into = utterances if "~u" in sample_id else rejected
        into[reject_reason] = into.get(reject_reason, 0) + 1
    counts = {
        "seeds_requested": engine.seeds_requested,
        "derivations_planned": engine.planned_derivations,
        "accepted": {"seed": len(seeds), "derivation": len(derivations)},
        "rejected": dict(sorted(rejected.items())),
        "utterance_rejects": dict(sorted(utterances.items())),
        "dataset_records": records,
    }
    if engine.gen.target:
        counts["target"] = engine.gen.target  # --target: what count accuracy is measured against
    engine.manifest.counts.update(counts)
    removed = drop_stale_dataset(engine.manifest, engine.output_dir, dataset, fmt)
    if removed:
        engine.warnings.append(removed)
    engine.manifest.extra["output"] = {"format": fmt, "dataset": dataset.name, "mode": engine.mode}
    servers = getattr(engine.provider, "servers", None)  # a fleet: what each server did this session
    if callable(servers):
        engine.manifest.extra["servers"] = servers()
    elapsed = time.monotonic() - started
    reason: str | None
    if engine.crash is not None:
        status, reason = "failed", f"{type(engine.crash).__name__}: {engine.crash}"
    elif interrupted:
        status, reason = "stopped", "interrupted"
    elif engine.stop_error is not None:
        status, reason = "stopped", engine.stop_error.message
    else:
        status, reason = ("completed" if engine.final else "running"), None
    engine.manifest.end(status, reason=reason, stats=engine.stats, session_elapsed_s=elapsed)
    if getattr(engine, "judge", None) is not None:
        engine.judge.finish(engine.manifest)  # its session's cost and scores (fountain.run.judging)
    manifest_path = engine.manifest.write(engine.output_dir)
    return RunResult(
        output_dir=engine.output_dir,
        dataset_path=dataset,
        dataset_records=records,
        samples=ResultSamples(parts),
        counts=counts,
        retries=engine.retries,
        stats=engine.stats,
        elapsed_s=elapsed,
        warnings=list(engine.warnings),
        stopped=engine.stop_error,
        manifest_path=manifest_path,
        resumed=bool(engine.manifest.runs[:-1]),
        mode=engine.mode,
    )
