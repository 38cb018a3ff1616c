"""`fountain edge serve` as a user runs it: a real process (uvicorn in the foreground, the bundled
embedder), a vote over HTTP, Ctrl-C; the owner's console names numbers only, never private text."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_helpers import CANARY, TOKEN, candidates, owner_files
from fountain.edge.client import EdgeClient, EdgeError

pytestmark = pytest.mark.slow  # loads the bundled embedder in a fresh process (~20-30 s on 2 cores)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_edge_serve_answers_a_vote_and_stops_cleanly_on_ctrl_c(tmp_path, monkeypatch):
    real = owner_files(tmp_path)
    port = free_port()
    env = {**os.environ, "FOUNTAIN_EDGE_TOKEN": TOKEN, "PYTHONPATH": SRC}
    argv = [sys.executable, "-m", "fountain", "edge", "serve", "--real-data", str(real), "--epsilon", "4"]
    argv += ["--delta", "1e-5", "--iterations", "2", "--port", str(port), "--state", str(tmp_path / "state")]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    client = EdgeClient(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ledger = client.ledger()
                break
            except EdgeError:
                assert process.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.5)
        assert ledger["votes_left"] == 2
        vote = client.vote({"marriage counsel": candidates(3)})
        assert vote.receipt["vote"] == 1 and len(vote.histograms["marriage counsel"]) == 3
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "listening on http://127.0.0.1" in output and "vote 1 answered" in output
    assert "edge stopped; its ledger is kept" in output and "Traceback" not in output
    assert CANARY not in output
    assert '"vote": 1' in (tmp_path / "state" / "ledger.json").read_text()
