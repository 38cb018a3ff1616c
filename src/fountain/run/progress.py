"""Progress display of a run (rich, on stderr) and its final summary table.

The bar is shown only on a terminal and never with ``--quiet``; a run without it costs nothing
here (every method is a cheap counter update). With the bar, events update the counters at once
and the bar at most every :data:`UPDATE_INTERVAL_S` (it redraws 4 times a second anyway), so a run
of thousands of requests a second does not pay a rich update per request.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID
    from rich.table import Table

    from fountain.run.engine import RunResult

UPDATE_INTERVAL_S = 0.1


class Progress:
    """Counts of a run, and (when ``enabled``) a live rich progress bar on stderr.

    The total is known from the plan up front: each pending seed holds the most derivations it
    can lead to, settled (add_total with a negative count) once the seed is accepted or rejected.
    """

    def __init__(self, *, enabled: bool | None = None, quiet: bool = False, stats: Any = None):
        if enabled is None:
            enabled = not quiet and sys.stderr.isatty()
        self.enabled = bool(enabled) and not quiet
        self.stats = stats  # a dispatch.RunStats (tokens/s, requests) when there is one
        self.total = 0
        self.accepted: Counter[str] = Counter()  # kind -> count
        self.rejected: Counter[str] = Counter()  # reason -> count
        self.retries = 0
        self.completion_tokens = 0
        self.started = time.monotonic()
        self._progress: RichProgress | None = None
        self._bar: TaskID | None = None
        self._advanced = 0  # completed tasks not yet passed to the bar
        self._updated = 0.0

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, total: int, *, done: int = 0) -> None:
        self.total = total
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("[bold]generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "[green]{task.fields[accepted]} ok[/] [red]{task.fields[rejected]} rejected[/] "
                "{task.fields[retries]} retries · {task.fields[tps]} tok/s"
            ),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
            refresh_per_second=4,
        )
        self._progress.start()
        self._bar = self._progress.add_task("run", total=max(total, 1), completed=done, **self._fields())

    def close(self) -> None:
        if self._progress is not None:
            self._refresh(force=True)
            self._progress.stop()
            self._progress = None

    # --- events --------------------------------------------------------------------------------

    def add_total(self, n: int) -> None:
        self.total += n
        self._refresh()

    def on_accepted(self, kind: str, completion_tokens: int = 0) -> None:
        self.accepted[kind] += 1
        self.completion_tokens += completion_tokens
        self._advance()

    def on_rejected(self, reason: str, completion_tokens: int = 0) -> None:
        self.rejected[reason] += 1
        self.completion_tokens += completion_tokens
        self._advance()

    def on_retry(self) -> None:
        self.retries += 1
        self._refresh()

    # --- display -------------------------------------------------------------------------------

    def tokens_per_s(self) -> float:
        if self.stats is not None and getattr(self.stats, "session_usage", None) is not None:
            return float(self.stats.tokens_per_s)
        elapsed = time.monotonic() - self.started
        return self.completion_tokens / elapsed if elapsed > 0 else 0.0

    def _fields(self) -> dict[str, Any]:
        return {
            "accepted": sum(self.accepted.values()),
            "rejected": sum(self.rejected.values()),
            "retries": self.retries,
            "tps": f"{self.tokens_per_s():.1f}",
        }

    def _advance(self) -> None:
        if self._progress is not None:
            self._advanced += 1
            self._refresh()

    def _refresh(self, *, force: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if not force and now - self._updated < UPDATE_INTERVAL_S:
            return
        self._updated = now
        advance, self._advanced = self._advanced, 0
        assert self._bar is not None  # added with the progress bar in start()
        self._progress.update(self._bar, advance=advance, total=max(self.total, 1), **self._fields())


def summary_table(result: RunResult) -> Table:
    """A rich Table summarising a :class:`fountain.run.engine.RunResult`."""
    from rich.table import Table

    table = Table(title="fountain run", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    counts = result.counts
    table.add_row("accepted", f"{counts['accepted']['seed']} seeds, {counts['accepted']['derivation']} derivations")
    rejected = counts.get("rejected") or {}
    table.add_row("rejected", ", ".join(f"{n} {r}" for r, n in sorted(rejected.items())) or "0")
    stats = result.stats
    if stats is not None:
        table.add_row(
            "requests",
            f"{stats.requests} sent, {stats.cache_hits} from cache, "
            f"{result.retries} validation retries, {stats.retries} provider retries",
        )
        usage = stats.session_usage
        table.add_row(
            "tokens",
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion ({stats.tokens_per_s:.1f} tok/s)",
        )
        if stats.cost_usd:
            table.add_row("cost", f"${stats.cost_usd:.4f}")
    judged = judge_line(result.manifest_path)
    if judged:
        table.add_row("judge", judged)
    table.add_row("elapsed", f"{result.elapsed_s:.1f}s")
    if result.dataset_path is not None:
        table.add_row("dataset", f"{result.dataset_path} ({result.dataset_records} records)")
    # Warnings and stop reasons may quote a server or a spec: no markup, escapes or secrets.
    from rich.markup import escape

    from fountain.safety import safe_text

    if result.warnings:
        table.add_row("warnings", escape(safe_text("\n".join(result.warnings))))
    if result.stopped is not None:
        table.add_row("stopped", escape(safe_text(result.stopped.message)))
    return table


def judge_line(manifest_path: Any) -> str | None:
    """The judge's figures for the run summary (``manifest.json``'s ``judge``; None without one)."""
    if manifest_path is None:
        return None
    import json
    from pathlib import Path

    try:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return judge_summary(manifest) if isinstance(manifest, dict) else None


def judge_summary(manifest: dict[str, Any]) -> str | None:
    """One line of the judge's figures from a manifest's data (None without a judge): for the run
    summary and `fountain status`. Escaped for rich markup; control characters and secrets removed."""
    judge = manifest.get("judge")
    if not isinstance(judge, dict):
        return None
    found = judge.get("rejected")
    rejected: dict[str, Any] = found if isinstance(found, dict) else {}
    line = (
        f"{judge.get('provider')}:{judge.get('model')}: {judge.get('judged', 0)} judged, "
        f"{sum(int(v) for v in rejected.values() if isinstance(v, int))} rejected, "
        f"{judge.get('requests', 0)} requests ({judge.get('cache_hits', 0)} from cache)"
    )
    cost = judge.get("cost_usd")
    if isinstance(cost, (int, float)) and cost:
        line += f", ${cost:.4f} of ${float(manifest.get('cost_usd') or 0):.4f} in all"
    from rich.markup import escape

    from fountain.safety import safe_text

    return escape(safe_text(line))  # names read from a file: no markup, escapes or secrets
