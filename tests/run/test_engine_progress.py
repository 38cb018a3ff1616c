"""The progress display and the summary table (rendered to a string, not a terminal)."""

from __future__ import annotations

import io

from rich.console import Console

from fountain import generate
from fountain.providers.fake import FakeProvider
from fountain.run.options import RunOptions
from fountain.run.progress import Progress, summary_table
from fountain.spec.load import load_spec
from run_helpers import make_spec


def test_progress_counts():
    progress = Progress(enabled=False)
    progress.start(3)
    progress.add_total(2)
    progress.on_accepted("seed", 10)
    progress.on_rejected("schema", 5)
    progress.on_retry()
    progress.close()
    assert progress.total == 5
    assert progress.accepted["seed"] == 1 and progress.rejected["schema"] == 1 and progress.retries == 1
    assert progress.completion_tokens == 15


def test_quiet_disables_the_bar():
    assert not Progress(enabled=True, quiet=True).enabled


def test_run_with_the_bar_and_summary(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    result = generate(
        spec, RunOptions(output=tmp_path / "out", progress=True, seed=1, fsync=False), provider=FakeProvider()
    )
    buffer = io.StringIO()
    Console(file=buffer, width=120).print(summary_table(result))
    text = buffer.getvalue()
    assert f"{result.counts['accepted']['seed']} seeds" in text
    assert "dataset.jsonl" in text and "requests" in text
