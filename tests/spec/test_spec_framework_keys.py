"""QA finding 9: `validate` must flag a Feedback spec without the PE rater (run refuses it), and
run's error must name setup.yaml's key, not a command-line option that was never given."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fountain.errors import FountainError, SpecError
from fountain.frameworks import plan_framework
from fountain.spec.load import load_spec
from framework_helpers import SETUP, make_spec, options


def _setup(extra: str) -> str:
    return SETUP.replace("{seeds}", "1").replace("{derivations}", "0") + extra


def test_feedback_without_a_rater_warns_in_validate_and_is_refused_by_run(tmp_path):
    # The rater may still come from the command line (--rater PE), so loading only warns...
    folder = make_spec(tmp_path, setup=_setup("framework: Feedback\n"))
    spec = load_spec(folder)
    problem = next(p for p in spec.warnings if p.message.startswith("framework:"))
    assert "needs the PE rater" in problem.message and "raters.rater: PE" in problem.hint
    assert problem.location.startswith(str(folder / "setup.yaml") + ":")
    # ...and a run with nothing supplying it is refused before any model call.
    with pytest.raises(FountainError):
        plan_framework(spec, options(tmp_path))


def test_feedback_with_rf_is_a_spec_error_at_the_rater(tmp_path):
    folder = make_spec(tmp_path, setup=_setup("framework: Feedback\nraters:\n  rater: RF\n"))
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    problem = next(p for p in info.value.problems if p.message.startswith("raters.rater:"))
    assert "PE" in problem.message and problem.hint


def test_filter_without_a_rater_stays_a_warning(tmp_path):
    spec = load_spec(make_spec(tmp_path, setup=_setup("framework: Filter\n")))
    assert any(w.message.startswith("framework: Filter") for w in spec.warnings)


def test_the_run_error_names_setup_yaml_when_the_framework_came_from_it(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    with pytest.raises(FountainError) as info:
        plan_framework(replace(spec, framework="Feedback"), options(tmp_path))
    assert "--framework" not in str(info.value) and "--framework" not in (info.value.location or "")
    assert "setup.yaml" in str(info.value) and "raters.rater: PE" in info.value.hint
    # located at the spec's `framework` key (file:line:col), from the spec's own locator
    assert (info.value.location or "").startswith(str(spec.path) + ":")
    with pytest.raises(FountainError) as info:  # given on the command line: the option is named
        plan_framework(spec, options(tmp_path, framework="Feedback"))
    assert info.value.location == "--framework"
