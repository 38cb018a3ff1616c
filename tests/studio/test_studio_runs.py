"""The run page's API: a run in a subprocess, watched through status and server-sent events,
stopped with SIGINT (it saves), resumed without paying twice (against the loopback mock API)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install 'fountain[studio]')")

from starlette.testclient import TestClient  # noqa: E402

from fountain.studio.app import create_app  # noqa: E402
from fountain.studio.runs import run_command, run_options  # noqa: E402
from studio_helpers import copy_sample  # noqa: E402

LOCAL = "http://127.0.0.1:8765"
ORIGIN = {"origin": LOCAL}


def _wait(client: TestClient, until, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get("/api/folders/0/run").json()
        if until(state):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_run_options_are_checked_and_become_cli_flags(tmp_path):
    folder = copy_sample(tmp_path)
    options = run_options(folder, {"provider": "FAKE", "seeds_per_direction": "2", "derivations_per_direction": 0})
    assert options == {"provider": "fake", "seeds_per_direction": 2, "derivations_per_direction": 0}
    command = run_command(folder, options)
    assert command[-6:] == ["--provider", "fake", "--seeds-per-direction", "2", "--derivations-per-direction", "0"]
    for bad in (
        {"provider": "nope"},
        {"seeds_per_direction": 0},
        {"concurrency": "many"},
        {"model": "--output=/tmp/x"},
        {"base_url": "file:///etc/passwd"},
    ):
        with pytest.raises(Exception) as error:
            run_options(folder, bad)
        assert getattr(error.value, "location", None), bad


@pytest.mark.slow  # two runs in subprocesses against a slow mock API: about 12 s on 2 cores, timing-dependent
def test_a_stopped_run_saves_and_resumes_without_paying_twice(tmp_path, mock_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    mock_server.configure(latency_ms=400)
    folder = copy_sample(tmp_path)
    with open(folder / "setup.yaml", "a") as handle:  # dedup would load the embedder in each session
        handle.write("\nraters:\n  dedup:\n    enabled: false\n")
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    body = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": mock_server.openai_base_url,
        "seeds_per_direction": 3,
        "derivations_per_direction": 0,
        "concurrency": 1,
        "seed": 7,  # a sampling seed per task: no two requests are the same
    }
    assert client.post("/api/folders/0/run/start", json=body, headers=ORIGIN).json()["started"]
    assert client.post("/api/folders/0/run/start", json=body, headers=ORIGIN).status_code == 400  # one at a time
    _wait(client, lambda s: s["status"] and s["status"]["seeds"]["accepted"] >= 1)
    assert client.post("/api/folders/0/run/stop", json={}, headers=ORIGIN).json() == {"stopping": True}
    stopped = _wait(client, lambda s: not s["running"])
    assert stopped["status"]["status"] == "stopped"
    assert stopped["status"]["seeds"]["left"] > 0  # it did stop before the end

    assert client.post("/api/folders/0/run/start", json=body, headers=ORIGIN).json()["started"]
    done = _wait(client, lambda s: not s["running"] and s["returncode"] is not None)
    status = done["status"]
    assert done["returncode"] == 0, done["log"]
    assert status["status"] == "completed"
    assert status["seeds"]["accepted"] == 6 and status["seeds"]["left"] == 0
    # Nothing answered before the stop is asked again; at most the one request in flight when
    # SIGINT came (concurrency 1) was answered by the server but not received, and is sent again.
    assert sum(n - 1 for n in mock_server.duplicates().values()) <= 1
    records = (folder / "output" / "dataset.jsonl").read_text().splitlines()
    assert len(records) == status["dataset_records"] and json.loads(records[0])["messages"]


def test_events_stream_the_run_state(tmp_path):
    folder = copy_sample(tmp_path)
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    with client.stream("GET", "/api/folders/0/run/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: status"
        data = json.loads(next(lines).removeprefix("data: "))
    assert data == {"running": False, "returncode": None, "options": None, "log": [], "status": None}


def test_the_records_of_a_run_list_filter_and_take_a_review(tmp_path):
    from fountain.run.review import load_review

    folder = copy_sample(tmp_path)
    out = folder / "output"
    out.mkdir()
    seed = {
        "messages": [{"role": "user", "content": "Hello money"}],
        "metadata": {"id": "s-1", "kind": "seed", "direction": "general", "parent_id": None, "prefix_turns": 0},
    }
    derived = {
        "messages": [{"role": "user", "content": "More on chores"}],
        "metadata": {"id": "d-1", "kind": "derivation", "direction": "in-depth", "parent_id": "s-1", "prefix_turns": 1},
    }
    reject = {
        "id": "s-2",
        "kind": "seed",
        "direction": "concretize",
        "reason": "too_short",
        "detail": "1 turn",
        "raw": "Hi",
        "metadata": {"parent_id": None},
    }
    (out / "seeds.jsonl").write_text(json.dumps(seed) + "\n")
    (out / "derivations.jsonl").write_text(json.dumps(derived) + "\n" + '{"torn')
    (out / "rejects.jsonl").write_text(json.dumps(reject) + "\n")
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    listing = client.get("/api/folders/0/records").json()
    assert [r["id"] for r in listing["records"]] == ["s-1", "d-1", "s-2"]
    assert listing["facets"]["reason"] == ["accepted", "too_short"]
    assert [r["id"] for r in client.get("/api/folders/0/records?reason=too_short").json()["records"]] == ["s-2"]
    assert [r["id"] for r in client.get("/api/folders/0/records?direction=in-depth").json()["records"]] == ["d-1"]
    assert [r["id"] for r in client.get("/api/folders/0/records?q=MONEY").json()["records"]] == ["s-1"]
    assert client.get("/api/folders/0/records/d-1").json()["parent_id"] == "s-1"
    assert (
        client.post("/api/folders/0/review", json={"id": "d-1", "decision": "drop"}, headers=ORIGIN).status_code == 200
    )
    assert (
        client.post("/api/folders/0/review", json={"id": "x-9", "decision": "drop"}, headers=ORIGIN).status_code == 400
    )
    assert load_review(out) == {"d-1": "drop"}
    assert [r["id"] for r in client.get("/api/folders/0/records?decision=drop").json()["records"]] == ["d-1"]
    assert (out / "derivations.jsonl").read_text().endswith('{"torn')  # journals are never rewritten


def _manifest_with_options(folder: Path, options: dict) -> Path:
    out = folder / "output"
    out.mkdir()
    manifest = {"format": 1, "status": "completed", "spec": {"fingerprint": "f"}, "runs": [{"options": options}]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_resume_passes_on_the_last_sessions_options(tmp_path):
    from fountain.studio.runs import last_options

    folder = copy_sample(tmp_path)
    recorded = {"provider": "openai", "model": "gpt-4o-mini", "seed": 3, "seeds_per_direction": 2, "budget_usd": 1.5}
    out = _manifest_with_options(folder, {**recorded, "fsync": True, "resume": "if-compatible", "cache": None})
    options = last_options(folder, out)
    assert options == recorded
    assert run_command(folder, options)[-4:] == ["--seeds-per-direction", "2", "--budget", "1.5"]


def test_resume_refuses_a_run_with_options_the_studio_does_not_pass_on(tmp_path):
    folder = copy_sample(tmp_path)
    out = _manifest_with_options(folder, {"provider": "fake", "real_data": "/data/private.jsonl", "rater": "PE"})
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    response = client.post("/api/folders/0/run/resume", json={}, headers=ORIGIN)
    assert response.status_code == 400
    assert "--real-data" in response.json()["error"] and "fountain run" in response.json()["hint"]
    assert client.get("/api/folders/0/run").json()["running"] is False
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def test_resume_without_a_run_says_so(tmp_path):
    folder = copy_sample(tmp_path)
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    response = client.post("/api/folders/0/run/resume", json={}, headers=ORIGIN)
    assert response.status_code == 400 and "no run" in response.json()["error"]
