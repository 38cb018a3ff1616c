"""manifest.json: atomic writes, spec versioning, git state and resume decisions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from fountain import __version__
from fountain.errors import OutputError
from fountain.providers.dispatch import RunStats
from fountain.run.gitinfo import git_state
from fountain.run.manifest import Manifest, changed_fields
from fountain.run.resume import check_resume
from fountain.types import Usage


class StubSpec:
    """What manifest.py needs of a Spec: folder, fingerprint(), fingerprint_fields()."""

    def __init__(self, folder: Path, **fields):
        self.folder = folder
        self._fields = {
            "initial_prompt": "p1",
            "seed_directions": "d1",
            "diagram": "g1",
            "generation.max_turns": 6,
            **fields,
        }

    def fingerprint_fields(self):
        return dict(self._fields)

    def fingerprint(self):
        return hashlib.sha256(json.dumps(self._fields, sort_keys=True).encode()).hexdigest()


OPENAI = {"provider": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1"}


def started_run(output: Path, spec: StubSpec, provider=OPENAI) -> Manifest:
    manifest = Manifest.for_spec(spec, provider=provider, output_dir=output)
    manifest.begin("start")
    manifest.write(output)
    return manifest


def test_round_trip_and_atomic_write(tmp_path):
    spec = StubSpec(tmp_path)
    manifest = started_run(tmp_path / "out", spec)
    manifest.counts["accepted"]["seed"] = 3
    manifest.counts["rejected"]["schema"] = 1
    manifest.extra["engine_state"] = {"next": 7}
    manifest.end("completed", stats=RunStats(usage=Usage(100, 50), cost_usd=0.25), session_elapsed_s=2.0)
    manifest.write(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json"]  # no temp left
    again = Manifest.read(tmp_path / "out")
    assert again.spec_fingerprint == spec.fingerprint()
    assert again.spec_fields == spec.fingerprint_fields()
    assert again.counts["accepted"] == {"seed": 3, "derivation": 0}
    assert again.counts["rejected"] == {"schema": 1}
    assert again.usage == {"prompt_tokens": 100, "completion_tokens": 50}
    assert again.cost_usd == 0.25 and again.status == "completed"
    assert again.extra["engine_state"] == {"next": 7}
    assert again.runs[0]["mode"] == "start" and again.runs[0]["status"] == "completed"
    assert again.fountain_version == __version__
    assert again.timings["elapsed_s"] == 2.0


def test_read_missing_and_broken(tmp_path):
    assert Manifest.read(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{ broken")
    with pytest.raises(OutputError) as info:
        Manifest.read(tmp_path)
    assert info.value.location.endswith("manifest.json") and info.value.hint


def test_newer_manifest_format_is_refused(tmp_path):
    started_run(tmp_path, StubSpec(tmp_path))
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["format"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(OutputError, match="newer fountain"):
        Manifest.read(tmp_path)


def test_changed_fields():
    assert changed_fields({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4}) == ["b", "c", "d"]
    assert changed_fields({"a": None}, {}) == ["a"]


# --- resume decisions ---------------------------------------------------------------------------


def test_new_or_empty_folder_starts(tmp_path):
    spec = StubSpec(tmp_path)
    assert check_resume(tmp_path / "new", spec).action == "start"
    (tmp_path / "empty").mkdir()
    assert check_resume(tmp_path / "empty", spec, "never").action == "start"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "cache.sqlite").write_bytes(b"")  # a shared cache is not a run
    assert check_resume(tmp_path / "shared", spec).action == "start"


def test_same_spec_resumes(tmp_path):
    spec = StubSpec(tmp_path)
    started_run(tmp_path / "out", spec)
    decision = check_resume(tmp_path / "out", spec, provider=OPENAI)
    assert decision.resuming and decision.manifest.spec_fingerprint == spec.fingerprint()
    assert decision.notes == ()


def test_another_spec_version_is_refused_naming_the_changed_fields(tmp_path):
    started_run(tmp_path / "out", StubSpec(tmp_path))
    changed = StubSpec(tmp_path, initial_prompt="p2", **{"generation.max_turns": 8})
    for mode in ("if-compatible", "always"):
        with pytest.raises(OutputError) as info:
            check_resume(tmp_path / "out", changed, mode)
        message = info.value.message
        assert "changed fields: generation.max_turns, initial_prompt" in message
        assert "seed_directions" not in message and "diagram" not in message
        assert "--output" in info.value.hint


def test_mode_never_refuses_a_folder_with_a_run(tmp_path):
    spec = StubSpec(tmp_path)
    started_run(tmp_path / "out", spec)
    with pytest.raises(OutputError) as info:
        check_resume(tmp_path / "out", spec, "never")
    assert "--resume never" in info.value.message and "--output" in info.value.hint


def test_mode_always_needs_something_to_resume(tmp_path):
    with pytest.raises(OutputError, match="nothing to resume"):
        check_resume(tmp_path / "typo", StubSpec(tmp_path), "always")


def test_another_model_needs_resume_always(tmp_path):
    spec = StubSpec(tmp_path)
    started_run(tmp_path / "out", spec)
    other = {**OPENAI, "model": "gpt-4o"}
    with pytest.raises(OutputError) as info:
        check_resume(tmp_path / "out", spec, "if-compatible", provider=other)
    assert "gpt-4o-mini" in info.value.message and "--resume always" in info.value.hint
    decision = check_resume(tmp_path / "out", spec, "always", provider=other)
    assert decision.resuming and "provider changed" in decision.notes[0]


def test_journals_without_a_manifest_are_never_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "seeds.jsonl").write_text('{"x": 1}\n')
    for mode in ("if-compatible", "never", "always"):
        with pytest.raises(OutputError, match="unknown run"):
            check_resume(out, StubSpec(tmp_path), mode)


def test_unknown_mode_and_file_as_output(tmp_path):
    with pytest.raises(OutputError, match="unknown resume mode"):
        check_resume(tmp_path, StubSpec(tmp_path), "sometimes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_resume(tmp_path / "file", StubSpec(tmp_path))


# --- git state ----------------------------------------------------------------------------------


def _git(folder: Path, *args: str) -> None:
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, env=env)


def test_git_state_of_a_spec_folder(tmp_path):
    repo = tmp_path / "repo"
    spec_folder = repo / "specs" / "counsel"
    spec_folder.mkdir(parents=True)
    (spec_folder / "setup.yaml").write_text("category: x\n")
    assert git_state(spec_folder) is None  # not a repository yet
    _git(repo, "init", "-q")
    assert git_state(spec_folder) is None  # no commit yet
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "spec")
    state = git_state(spec_folder)
    assert state is not None and len(state.commit) == 40 and state.dirty is False
    # Output written inside the spec folder does not make the spec dirty when excluded.
    (spec_folder / "output").mkdir()
    (spec_folder / "output" / "seeds.jsonl").write_text("{}\n")
    assert git_state(spec_folder, exclude=[spec_folder / "output"]).dirty is False
    assert git_state(spec_folder).dirty is True
    # Changes elsewhere in the repository do not make this folder dirty.
    (repo / "README").write_text("other")
    assert git_state(spec_folder, exclude=[spec_folder / "output"]).dirty is False
    (spec_folder / "setup.yaml").write_text("category: y\n")
    state = git_state(spec_folder, exclude=[spec_folder / "output"])
    assert state.dirty is True
    manifest = Manifest.for_spec(StubSpec(spec_folder), output_dir=spec_folder / "output")
    assert manifest.git == {"commit": state.commit, "dirty": True}


def test_real_spec_change_is_refused_naming_the_field(tmp_path):
    import shutil

    from fountain.spec.load import load_spec

    sample = Path(__file__).resolve().parents[2] / "samples" / "marriage_counsel"
    folder = tmp_path / "spec"
    shutil.copytree(sample, folder, ignore=shutil.ignore_patterns("output"))
    spec = load_spec(folder)
    out = folder / "output"
    started_run(out, spec)
    # Comments and run settings are not part of the spec version.
    setup = folder / "setup.yaml"
    setup.write_text("# a new comment\n" + setup.read_text())
    assert check_resume(out, load_spec(folder)).resuming
    # A new seed direction is.
    text = setup.read_text()
    assert "seed_evolving_directions:\n" in text
    setup.write_text(text.replace("seed_evolving_directions:\n", "seed_evolving_directions:\n  - breadth\n", 1))
    changed = load_spec(folder)
    with pytest.raises(OutputError) as info:
        check_resume(out, changed)
    fields = changed_fields(Manifest.read(out).spec_fields, changed.fingerprint_fields())
    assert fields and all(name in info.value.message for name in fields)
    assert any("direction" in name for name in fields)
