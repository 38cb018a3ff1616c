"""RunOptions: groups by concern, the flat names kept for users and the manifest, and output
folders written by the version with flat options still resuming."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import fountain
from fountain.providers.fake import FakeProvider
from fountain.run.option_groups import BudgetOptions, ExportOptions, LLMOptions
from fountain.run.options import GROUP_OF, RunOptions
from fountain.spec.load import load_spec
from run_helpers import make_spec, options

# What the version with ~50 flat fields wrote into manifest.json for `RunOptions(output=...,
# provider="fake", seed=1, fsync=False, budget_usd=2.5, allow_key_env=("MY_KEY",))`.
FLAT_RECORD = {
    "output": "OUT",
    "provider": "fake",
    "seed": 1,
    "fsync": False,
    "resume": "if-compatible",
    "no_cache": False,
    "budget_usd": 2.5,
    "max_error_rate": 0.5,
    "allow_key_env": ["MY_KEY"],
}


def test_flat_names_land_in_their_groups():
    opts = RunOptions(provider="fake", output="out", seed=3, budget_usd=1.0, concurrency=4, rater="PE")
    assert opts.llm.provider == "fake"
    assert opts.export.output == "out"
    assert opts.generation.seed == 3
    assert opts.budget.budget_usd == 1.0
    assert opts.execution.concurrency == 4
    assert opts.rating.rater == "PE"


def test_a_flat_name_overrides_the_group_given_with_it():
    opts = RunOptions(llm=LLMOptions(provider="openai", model="m"), provider="fake")
    assert opts.llm == LLMOptions(provider="fake", model="m")


def test_reading_a_flat_name_still_works_for_library_users():
    opts = RunOptions(provider="fake", max_turns=4)
    assert opts.provider == "fake" and opts.max_turns == 4 and opts.no_cache is False
    with pytest.raises(AttributeError):
        _ = opts.no_such_option


def test_an_unknown_option_is_refused_by_name():
    with pytest.raises(TypeError, match="bogus"):
        RunOptions(provider="fake", bogus=1)


def test_options_are_frozen_and_copied_with_changes():
    opts = RunOptions(target=10, seed=1)
    with pytest.raises(AttributeError):
        opts.llm = LLMOptions()  # type: ignore[misc]
    changed = opts.with_(target=None, budget=BudgetOptions(no_cache=True))
    assert changed.generation.target is None and changed.generation.seed == 1
    assert changed.budget.no_cache is True
    assert opts.generation.target == 10  # the original is unchanged


def test_every_flat_name_belongs_to_exactly_one_group():
    flat = RunOptions().flat()
    assert set(flat) == set(GROUP_OF)
    assert len(GROUP_OF) >= 45  # the CLI's run options, all of them


def test_record_is_the_flat_form_earlier_versions_wrote(tmp_path):
    opts = RunOptions(
        output=Path("OUT"), provider="fake", seed=1, fsync=False, budget_usd=2.5, allow_key_env=("MY_KEY",)
    )
    assert json.loads(json.dumps(opts.record())) == FLAT_RECORD
    assert "quiet" not in RunOptions(quiet=True).record()


def test_recorded_options_read_back_as_the_same_options():
    back = RunOptions.from_record({**FLAT_RECORD, "from_a_later_version": 1})
    assert back.llm.allow_key_env == ("MY_KEY",)
    assert back == RunOptions(
        output="OUT", provider="fake", seed=1, fsync=False, budget_usd=2.5, allow_key_env=("MY_KEY",)
    )


def test_options_pickle_for_the_ray_executor():
    opts = RunOptions(provider="fake", export=ExportOptions(output="o"), edge=("http://a",))
    assert pickle.loads(pickle.dumps(opts)) == opts


def test_a_folder_whose_manifest_has_flat_options_resumes(tmp_path):
    """An output folder written before the groups: its manifest's run history holds the flat
    options dict. The same command resumes it, and the new session records the flat form too."""
    spec = load_spec(make_spec(tmp_path))
    out = tmp_path / "out"
    first = fountain.generate(spec, options(out), provider=FakeProvider())
    manifest_path = out / "manifest.json"
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    data["runs"][-1]["options"] = {**FLAT_RECORD, "output": str(out), "mode": "json"}
    data["runs"][-1]["status"] = "stopped"
    data["status"] = "stopped"
    manifest_path.write_text(json.dumps(data), encoding="utf-8")

    provider = FakeProvider()
    again = fountain.generate(spec, options(out), provider=provider)
    assert again.resumed
    assert provider.requests == []  # everything was done: nothing is asked twice
    assert again.dataset_records == first.dataset_records
    runs = json.loads(manifest_path.read_text(encoding="utf-8"))["runs"]
    assert len(runs) == 2 and runs[-1]["status"] == "completed"
    assert runs[-1]["options"]["output"] == str(out) and runs[-1]["options"]["seed"] == 1
    assert RunOptions.from_record(runs[0]["options"]).budget.budget_usd == 2.5
