"""The batch jobs of a run in ``fountain status`` (from ``batches.jsonl``; read-only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fountain.batch.jobs import LEDGER_FILE, Ledger
from fountain.errors import OutputError


def add_batch_status(output_dir: str | Path, collect: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``collect()`` (the run's status) with a ``batch`` entry when the folder has batch jobs; a
    folder with jobs but no run written yet gets the batch entry alone."""
    folder = Path(output_dir)
    has_batch = (folder / LEDGER_FILE).is_file()
    try:
        status = collect()
    except OutputError:
        if not has_batch:
            raise
        status = {"output": str(folder.resolve())}
    if has_batch:
        status["batch"] = Ledger(folder).summary()
    return status


def print_batch_status(console: Any, batch: dict[str, Any] | None) -> None:
    """A few lines on the jobs (nothing when there are none)."""
    if not batch:
        return
    from rich.markup import escape

    states = ", ".join(f"{n} {state}" for state, n in sorted(batch["states"].items()))
    console.print(
        f"batch     {len(batch['jobs'])} job(s): {escape(states)}; {batch['requests']:,} requests submitted, "
        f"{batch['in_flight']:,} waiting, {batch['failed']:,} failed"
    )
    usage = batch.get("usage") or {}
    console.print(
        f"          {usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} completion "
        f"tokens collected; cost ${batch['cost_usd']:.4f} at batch prices"
    )
    for job in batch["jobs"]:
        if job["state"] not in ("collected", "abandoned"):
            counts = ", ".join(f"{k} {v}" for k, v in job["counts"].items())
            console.print(
                f"          {escape(job['job'])} {escape(str(job['remote_id']))}: {escape(job['state'])}"
                + (f" ({escape(counts)})" if counts else "")
            )
    if batch["in_flight"]:
        console.print("[dim]run the same `fountain run --batch` command again to collect them[/]")
