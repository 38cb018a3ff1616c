"""The end of an engine round: the engine hands a RoundEnd to finish_round, which rewrites the
journals and writes the manifest; a round never exports (the framework runner does, once)."""

from __future__ import annotations

import json
from dataclasses import replace

from fountain.errors import FountainError
from fountain.providers.fake import FakeProvider
from fountain.run.finish import RoundEnd, count_rejects
from fountain.spec.load import load_spec
from run_helpers import make_spec, options, records, run_round


def test_a_completed_round_leaves_the_manifest_running_and_exports_nothing(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    out = tmp_path / "out"
    result = run_round(spec, options(out), FakeProvider())
    assert not (out / "dataset.jsonl").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "running" and manifest["runs"][-1]["status"] == "running"
    assert manifest["output"]["dataset"] == "dataset.jsonl"  # what the runner will write
    accepted = len(records(out / "seeds.jsonl")) + len(records(out / "derivations.jsonl"))
    assert result.dataset_records == accepted == sum(result.counts["accepted"].values())


def test_the_round_result_tallies_the_seeds_it_left_in_the_journals(tmp_path):
    """What the runner counts at the end (seed turn counts, accepted samples) comes from the
    round's index: the same as reading the rewritten journals, a resumed session included."""
    spec = load_spec(make_spec(tmp_path))
    out = tmp_path / "out"
    run_round(spec, options(out, seeds_per_direction=1), FakeProvider())
    result = run_round(spec, options(out, seeds_per_direction=3), FakeProvider())
    seeds = records(out / "seeds.jsonl")
    assert len(seeds) > 1
    assert result.seed_turns == tuple(len(r["messages"]) // 2 for r in seeds)
    assert result.dataset_records == len(seeds) + len(records(out / "derivations.jsonl"))


def _end(**changes) -> RoundEnd:
    base = RoundEnd(
        output_dir=None,  # type: ignore[arg-type]
        samples=None,  # type: ignore[arg-type]
        rejects={},
        sort_key=str,
        dataset_format="messages",
        mode="json",
        seeds_requested=0,
        derivations_planned=0,
        target=None,
        manifest=None,  # type: ignore[arg-type]
        stats=None,
        retries=0,
        warnings=[],
        servers=None,
        started=0.0,
        interrupted=False,
        crash=None,
        stop_error=None,
    )
    return replace(base, **changes)


def test_the_round_status_says_why_it_ended():
    assert _end().status() == ("running", None)
    assert _end(stop_error=FountainError("budget spent")).status() == ("stopped", "budget spent")
    assert _end(interrupted=True, stop_error=FountainError("x")).status() == ("stopped", "interrupted")
    assert _end(crash=ValueError("bug"), interrupted=True).status() == ("failed", "ValueError: bug")


def test_rejects_are_counted_apart_from_utterances_asked_again():
    rejected, utterances = count_rejects(
        [("s1", "duplicate"), ("s2~u0", "elimination:refusal"), ("s2", "duplicate"), ("s3", "json")]
    )
    assert rejected == {"duplicate": 2, "json": 1} and list(rejected) == ["duplicate", "json"]
    assert utterances == {"elimination:refusal": 1}
