"""The progress total is known from the plan at the start (so the ETA is), and settles to the
number of tasks the run really had."""

from __future__ import annotations

from fountain import generate
from fountain.providers.fake import FakeProvider
from fountain.run import progress as progress_module
from fountain.run.progress import Progress
from fountain.spec.load import load_spec
from run_helpers import make_spec, options, records


class Spy(Progress):
    made: list[Spy] = []

    def __init__(self, **kw):
        super().__init__(**kw)
        self.starts: list[int] = []
        Spy.made.append(self)

    def start(self, total, *, done=0):
        self.starts.append(total)
        super().start(total, done=done)


def test_the_total_is_planned_up_front_and_settles_to_the_tasks_run(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_module, "Progress", Spy)
    spec = load_spec(make_spec(tmp_path))
    generate(spec, options(tmp_path / "out"), provider=FakeProvider())
    progress = Spy.made[-1]
    # 4 seeds, each reserving max_turns (3) prefixes x 2 directions x 1 derivation
    assert progress.starts == [4 + 4 * 3 * 2]
    done = len(records(tmp_path / "out" / "seeds.jsonl")) + len(records(tmp_path / "out" / "derivations.jsonl"))
    rejected = [r for r in records(tmp_path / "out" / "rejects.jsonl") if r["kind"] != "utterance"]
    assert progress.total == done + len(rejected)


def test_the_manifest_keeps_the_target_for_count_accuracy(tmp_path):
    import json

    from fountain.report.counts import counts_section
    from fountain.report.load import load_dataset

    spec = load_spec(make_spec(tmp_path))
    generate(spec, options(tmp_path / "out", target=3), provider=FakeProvider())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["target"] == 3
    counts = counts_section(load_dataset(tmp_path / "out"))
    assert counts["target"] == 3
    assert counts["count_accuracy"] == counts["produced"] / 3
