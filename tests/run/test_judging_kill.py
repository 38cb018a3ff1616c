"""A judged run killed with SIGKILL and run again: the same dataset (verdicts included) as an
uninterrupted run, and no request (generation or verdict) answered twice by the server. Uses the
fair-kill machinery of test_resume_kill (kill only while every slot waits inside the server; the
judge shares the run's limiter on the same endpoint, so the slots are the same)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _helpers():
    path = Path(__file__).with_name("test_resume_kill.py")
    spec = importlib.util.spec_from_file_location("_resume_kill_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_during_a_judged_run_then_resume_pays_no_verdict_twice(tmp_path, mock_server):
    import yaml

    kill = _helpers()
    folder = tmp_path / "spec"
    shutil.copytree(kill.SAMPLE, folder, ignore=shutil.ignore_patterns("output"))
    setup = folder / "setup.yaml"
    data = yaml.safe_load(setup.read_text())
    data.setdefault("raters", {})["dedup"] = {"enabled": False}  # the mock's text is templated
    setup.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    mock_server.configure(latency_ms=kill.LATENCY_MS, record=False)
    url = mock_server.openai_base_url

    def command(out: Path) -> list[str]:
        return [*kill.command(folder, out, url), "--judge", "openai:mock-model"]

    reference = tmp_path / "reference"
    kill.run_to_end(command(reference))
    expected = (reference / "dataset.jsonl").read_bytes()
    judged = json.loads((reference / "manifest.json").read_text())["judge"]
    total = mock_server.state.received
    assert expected.count(b"\n") >= 4 and judged["judged"] >= 6 and judged["rejected"]

    mock_server.reset()
    mock_server.configure(latency_ms=kill.LATENCY_MS, record=False)
    out = tmp_path / "killed"
    for n in (1, 3):
        assert kill.run_and_kill(
            command(out),
            out,
            mock_server,
            lambda out, watch, n=n: kill.lines(out / "seeds.jsonl") >= n and watch.safe(),
        ), f"the run finished before {n} seed(s)"
    kill.run_to_end(command(out))

    assert (out / "dataset.jsonl").read_bytes() == expected  # same records, same verdicts
    assert mock_server.duplicates() == {}, "a request that had completed was sent again"
    assert sum(mock_server.state.completed.values()) == total
    again = json.loads((out / "manifest.json").read_text())["judge"]
    assert again["judged"] == judged["judged"] and again["rejected"] == judged["rejected"]
    assert again["mean"] == judged["mean"]
