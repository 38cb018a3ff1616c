"""The studio resumes (and re-exports) a run started with --judge with the same judge."""

from __future__ import annotations

import run_helpers
from fountain import generate
from fountain.spec.load import load_spec


def test_the_studio_resumes_a_judged_run_with_its_judge(tmp_path):
    from fountain.studio.runs import last_options, run_command

    folder = run_helpers.make_spec(tmp_path)
    out = tmp_path / "spec" / "output"
    generate(load_spec(folder), run_helpers.options(out, provider="fake", judge="fake"))
    options = last_options(folder, out)
    assert options["judge"] == "fake"
    command = run_command(folder, options)
    assert command[command.index("--judge") + 1] == "fake"
