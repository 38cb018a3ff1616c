"""Hand review (review.jsonl): last decision wins, torn lines are skipped, export leaves dropped
records out in every format, and a resumed run re-exports honouring it."""

from __future__ import annotations

import json

import pytest

from fountain.errors import OutputError
from fountain.run.export import export_dataset
from fountain.run.review import REVIEW_FILE, append_decision, dropped_ids, load_review
from fountain.types import Provenance, Sample, Turn


def _sample(i: int) -> Sample:
    prov = Provenance(kind="seed", direction="general", category="c", provider="fake", model="fake")
    return Sample(f"s-{i}", (Turn(f"hello {i}", f"answer {i}"),), prov)


def _ids(path) -> list[str]:
    return [json.loads(line)["metadata"]["id"] for line in path.read_text().splitlines()]


def test_no_review_file_means_no_decisions(tmp_path):
    assert load_review(tmp_path) == {}
    assert dropped_ids(tmp_path) == frozenset()


def test_last_decision_wins_and_the_file_only_grows(tmp_path):
    append_decision(tmp_path, "s-1", "drop")
    append_decision(tmp_path, "s-2", "drop")
    append_decision(tmp_path, "s-1", "keep")
    assert load_review(tmp_path) == {"s-1": "keep", "s-2": "drop"}
    assert len((tmp_path / REVIEW_FILE).read_text().splitlines()) == 3


def test_a_torn_or_foreign_line_is_skipped_and_the_next_decision_starts_a_new_line(tmp_path):
    (tmp_path / REVIEW_FILE).write_text('[1]\n{"id": "s-1", "decision": "maybe"}\n{"id": "s-3", "deci')
    append_decision(tmp_path, "s-2", "drop")
    assert load_review(tmp_path) == {"s-2": "drop"}


@pytest.mark.parametrize("sample_id, decision", [("s-1", "delete"), ("", "drop"), ("a\nb", "drop")])
def test_a_bad_decision_is_refused(tmp_path, sample_id, decision):
    with pytest.raises(OutputError):
        append_decision(tmp_path, sample_id, decision)
    assert not (tmp_path / REVIEW_FILE).exists()


@pytest.mark.parametrize("fmt", ["messages", "sharegpt"])
def test_export_dataset_leaves_dropped_records_out(tmp_path, fmt):
    append_decision(tmp_path, "s-1", "drop")
    append_decision(tmp_path, "s-2", "drop")
    append_decision(tmp_path, "s-2", "keep")
    path = export_dataset([_sample(i) for i in range(4)], tmp_path, fmt)
    assert _ids(path) == ["s-0", "s-2", "s-3"]


def test_a_resumed_run_reexports_without_the_dropped_record_and_keeps_the_journals(tmp_path):
    from fountain.frameworks import run_framework
    from fountain.spec.load import load_spec
    from run_helpers import SETUP, make_spec, options

    folder = make_spec(tmp_path, SETUP + "raters:\n  dedup:\n    enabled: false\n")  # no embedder: fast
    out = tmp_path / "out"
    opts = options(out, provider="fake")
    spec = load_spec(folder)
    first = run_framework(spec, opts)
    ids = _ids(first.dataset_path)
    journals = (out / "seeds.jsonl").read_bytes()
    append_decision(out, ids[0], "drop")
    second = run_framework(spec, opts)
    assert _ids(second.dataset_path) == ids[1:]
    assert second.dataset_records == len(ids) - 1 and [s.id for s in second.samples] == ids[1:]
    assert json.loads((out / "manifest.json").read_text())["counts"]["dataset_records"] == len(ids) - 1
    assert (out / "seeds.jsonl").read_bytes() == journals
