"""``--target N`` stops at N accepted conversations, also when answers were in flight at the time."""

from __future__ import annotations

import json

import pytest

from framework_helpers import make_spec
from spec_helpers import run_cli


@pytest.mark.parametrize("processes", ["0", "1"])
def test_answers_in_flight_when_the_target_is_reached_are_not_added(tmp_path, capsys, processes):
    # With validation processes, several answers wait for their verdicts at once: each would
    # pass the target check made before its request.
    spec = make_spec(tmp_path, seeds=4, derivations=2)
    out = tmp_path / "out"
    code, text = run_cli(
        ["run", "-t", str(spec), "--provider", "fake", "--seed", "2", "-o", str(out), "-q", "--mode", "json",
         "--concurrency", "8", "--target", "3", "--validation-processes", processes],
        capsys,
    )  # fmt: skip
    assert code == 0, text
    lines = (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert len((out / "seeds.jsonl").read_text(encoding="utf-8").splitlines()) <= 3
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["dataset_records"] == 3
