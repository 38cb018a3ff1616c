"""`fountain status OUTPUT_DIR`: done / left, spec version, usage and cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fountain.cli import main
from fountain.providers.dispatch import RunStats
from fountain.run.manifest import Manifest
from fountain.types import Usage


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


class StubSpec:
    def __init__(self, folder: Path):
        self.folder = folder

    def fingerprint(self):
        return "ab" * 32

    def fingerprint_fields(self):
        return {"initial_prompt": "x"}


def make_run(tmp_path: Path, *, torn: bool = False, status: str = "stopped") -> Path:
    out = tmp_path / "out"
    manifest = Manifest.for_spec(
        StubSpec(tmp_path / "gone"),
        provider={"provider": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1"},
    )
    manifest.counts.update(seeds_requested=10, derivations_planned=40)
    manifest.begin("start")
    manifest.end(
        status,
        reason="budget reached" if status == "stopped" else None,
        stats=RunStats(usage=Usage(12_345, 6_789), cost_usd=0.0123),
        session_elapsed_s=61,
    )
    manifest.write(out)
    seed = {"messages": [], "metadata": {"kind": "seed"}}
    (out / "seeds.jsonl").write_text(json.dumps(seed) + "\n" * 1 + json.dumps(seed) + "\n" + json.dumps(seed) + "\n")
    (out / "derivations.jsonl").write_text(json.dumps(seed) + "\n" + ('{"messages": [' if torn else ""))
    rejects = [
        {"kind": "seed", "reason": "schema"},
        {"kind": "seed", "reason": "invalid_json"},
        {"kind": "derivation", "reason": "schema"},
    ]
    (out / "rejects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejects))
    return out


def test_status_json_counts_done_and_left(tmp_path, capsys):
    out = make_run(tmp_path, torn=True)
    code, stdout, _ = run_cli(capsys, "status", str(out), "--json")
    assert code == 0
    status = json.loads(stdout)
    assert status["status"] == "stopped" and status["stop_reason"] == "budget reached"
    assert status["seeds"] == {"requested": 10, "accepted": 3, "rejected": 2, "left": 5}
    assert status["derivations"] == {"planned": 40, "accepted": 1, "rejected": 1, "left": 38}
    assert status["rejected_by_reason"] == {"schema": 2, "invalid_json": 1}
    assert status["torn_lines"] == ["derivations.jsonl"]
    assert status["usage"] == {"prompt_tokens": 12_345, "completion_tokens": 6_789}
    assert status["cost_usd"] == pytest.approx(0.0123)
    assert status["spec"]["fingerprint"] == "ab" * 32
    assert isinstance(status["spec"]["changed_since"], str)  # the spec folder is gone
    # status never repairs: the torn line is still there for the engine to drop on resume
    assert (out / "derivations.jsonl").read_text().endswith('{"messages": [')


def test_status_table(tmp_path, capsys):
    out = make_run(tmp_path)
    code, stdout, _ = run_cli(capsys, "status", str(out))
    assert code == 0
    assert "stopped" in stdout and "budget reached" in stdout
    assert "abababababab" in stdout  # fingerprint, shortened
    assert "openai gpt-4o-mini" in stdout
    assert "$0.0123" in stdout and "12,345 prompt" in stdout
    assert "schema 2" in stdout and "invalid_json 1" in stdout
    assert "run the same `fountain run` command again" in stdout


def test_status_of_a_folder_without_a_run_is_a_clean_error(tmp_path, capsys):
    code, stdout, stderr = run_cli(capsys, "status", str(tmp_path))
    assert code == 1
    assert "no fountain run here" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli(capsys, "status", str(tmp_path / "missing"))
    assert code == 1 and "no such output folder" in stderr
