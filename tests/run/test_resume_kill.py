"""Crash-safe resume: a real `fountain run` subprocess, killed with SIGKILL again and again.

The run talks to the loopback mock server (OpenAI API) through the real `openai` adapter. After
every kill the same command runs again; at the end the dataset must be byte-for-byte the one an
uninterrupted run wrote, and the server must have answered no request twice (no request that had
completed was sent again, so nothing was paid twice).

Kill timing: a kill is only "fair" when no answer is on its way between the server and the
client's cache (an answer the server sent a microsecond before the kill could not have been saved
by any client). The test therefore kills when every concurrency slot is waiting inside the server
with a comfortable margin before the oldest answer is due; the client holds a slot until the answer
is committed to the cache, so at such a moment every answer received so far is on disk. The client
may then be anywhere else (writing journal lines, validating, planning). A write torn by a crash is
simulated on top (half a JSON line appended to a journal), and one kill targets the final phase
that rewrites the journals and exports the dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import pytest

from fountain.run.status import collect_status

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "marriage_counsel"
LATENCY_MS = 60.0
MARGIN_MS = 25.0  # the oldest request in the server must have at least this left when we kill
CONCURRENCY = 4
EXTRA = os.environ.get("KILLTEST_EXTRA", "").split()
SECRET = "sk-test-NEVER-WRITE-ME-0123456789"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def command(spec: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fountain",
        "run",
        "--target-folder",
        str(spec),
        "--output",
        str(out),
        "--provider",
        "openai",
        "--model",
        "mock-model",
        "--base-url",
        url,
        "--seed",
        "7",
        "--concurrency",
        str(CONCURRENCY),
        "--seeds-per-direction",
        "3",
        "--derivations-per-direction",
        "1",
        "--mode",
        "turns",
        "--quiet",
        *EXTRA,
    ]


def environment() -> dict[str, str]:
    env = dict(os.environ, OPENAI_API_KEY=SECRET, PYTHONUNBUFFERED="1")
    env.pop("FOUNTAIN_PROVIDER", None)
    env.pop("FOUNTAIN_MODEL", None)
    env.pop("FOUNTAIN_BASE_URL", None)
    return env


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


class Watch:
    """Follows the mock server's counters to know when requests arrived and which still wait."""

    def __init__(self, server):
        self.state = server.state
        self.received = self.state.received
        self.completed = sum(self.state.completed.values())
        self.arrivals: deque[float] = deque()

    def poll(self) -> None:
        now = time.monotonic()
        received = self.state.received
        for _ in range(received - self.received):
            self.arrivals.append(now)
        self.received = received
        completed = sum(self.state.completed.values())
        for _ in range(completed - self.completed):
            if self.arrivals:
                self.arrivals.popleft()
        self.completed = completed

    def safe(self) -> bool:
        """Every slot is waiting in the server and the next answer is not due for a while."""
        if len(self.arrivals) < CONCURRENCY:
            return False
        waited_ms = (time.monotonic() - self.arrivals[0]) * 1000
        return waited_ms < LATENCY_MS - MARGIN_MS


def run_and_kill(cmd, out: Path, server, when, *, timeout: float = 60.0) -> bool:
    """Start the run; SIGKILL it the first time ``when(out, watch)`` holds. True if killed."""
    watch = Watch(server)
    process = subprocess.Popen(cmd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            watch.poll()
            if when(out, watch):
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                return True
            if time.monotonic() > deadline:
                raise AssertionError("the run did not reach its kill point in time")
            time.sleep(0.0005)
        _, err = process.communicate()
        assert process.returncode == 0, err.decode()
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def run_to_end(cmd) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def spec_folder(tmp_path) -> Path:
    import yaml

    folder = tmp_path / "spec"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("output"))
    # The mock's answers are templated text: dedup (a later stage, with an embedding model) would
    # drop most of them. This test is about the generation journals and the cache.
    setup = folder / "setup.yaml"
    data = yaml.safe_load(setup.read_text())
    data.setdefault("raters", {})["dedup"] = {"enabled": False}
    setup.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return folder


def test_sigkill_at_many_points_then_resume_gives_the_uninterrupted_dataset(spec_folder, tmp_path, mock_server):
    mock_server.configure(latency_ms=LATENCY_MS, record=False)
    url = mock_server.openai_base_url

    # The reference: one uninterrupted run.
    reference = tmp_path / "reference"
    run_to_end(command(spec_folder, reference, url))
    expected = (reference / "dataset.jsonl").read_bytes()
    total_requests = mock_server.state.received
    assert expected.count(b"\n") >= 12 and total_requests > 60

    mock_server.reset()
    mock_server.configure(latency_ms=LATENCY_MS, record=False)
    out = tmp_path / "killed"
    cmd = command(spec_folder, out, url)

    def safe_after(name: str, n: int):
        return lambda out, watch: lines(out / name) >= n and watch.safe()

    kill_points = [
        (
            "after the manifest, before any request",
            lambda out, watch: (out / "manifest.json").exists() and watch.received == 0,
        ),
        ("after 1 seed", safe_after("seeds.jsonl", 1)),
        ("after 3 seeds", safe_after("seeds.jsonl", 3)),
        ("after 1 derivation", safe_after("derivations.jsonl", 1)),
        ("after 4 derivations", safe_after("derivations.jsonl", 4)),
    ]
    for name, when in kill_points:
        before = mock_server.state.received
        assert run_and_kill(cmd, out, mock_server, when), f"the run finished before the kill point {name!r}"
        assert (out / "manifest.json").exists()
        if name == "after 1 derivation":
            # What a kill in the middle of an append leaves: a torn last line.
            with open(out / "derivations.jsonl", "ab") as handle:
                handle.write(b'{"messages": [{"role": "user", "content": "half a rec')
        status = collect_status(out, check_spec=False)
        assert status["status"] == "running"  # killed: the manifest still says so
        assert mock_server.state.received >= before

    # One kill aimed at the final phase (journals rewritten, dataset exported): no request is
    # outstanding then. If the phase is too short to catch, the run simply completes.
    def finishing(out, watch):
        return any(p.name.startswith(".") for p in out.iterdir())

    run_and_kill(cmd, out, mock_server, finishing)
    run_to_end(cmd)

    assert (out / "dataset.jsonl").read_bytes() == expected
    assert mock_server.duplicates() == {}, "a request that had completed was sent again"
    assert sum(mock_server.state.completed.values()) == total_requests
    for name in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl"):
        for _number, line in enumerate((out / name).read_text().splitlines(), 1):
            json.loads(line)  # no torn line survives
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert [run["mode"] for run in manifest["runs"]][:2] == ["start", "resume"]
    assert len(manifest["runs"]) >= len(kill_points) + 1

    # A finished run started again makes no request and rewrites the same dataset.
    received = mock_server.state.received
    run_to_end(cmd)
    assert mock_server.state.received == received
    assert (out / "dataset.jsonl").read_bytes() == expected

    # The key was in the environment of every run: it must be in no file.
    for path in out.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name
