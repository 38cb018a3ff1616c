"""`fountain studio`: serves the app on loopback, prints where, stops cleanly on Ctrl-C; a token
URL off loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'fountain[studio]')")

from studio_helpers import copy_sample, free_port  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def _serve(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "fountain", "studio", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )


def _get(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5)
        except urllib.error.HTTPError as error:
            return error
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_studio_serves_the_folder_on_loopback_and_stops_on_ctrl_c(tmp_path):
    folder = copy_sample(tmp_path)
    port = free_port()
    process = _serve([str(folder), "--port", str(port)])
    try:
        page = _get(f"http://127.0.0.1:{port}/")
        assert page.status == 200 and b"fountain studio" in page.read()
        folders = _get(f"http://127.0.0.1:{port}/api/folders").read().decode()
        assert str(folder) in folders
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in err.decode()
    assert "token" not in err.decode()


def test_ctrl_c_ends_open_event_streams_and_exits_without_a_traceback(tmp_path):
    folder = copy_sample(tmp_path)
    port = free_port()
    process = _serve([str(folder), "--port", str(port)])
    try:
        stream = _get(f"http://127.0.0.1:{port}/api/folders/0/run/events")  # a browser tab watching
        assert stream.readline() == b"event: status\n"
    finally:
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert "Traceback" not in err.decode()


def test_studio_off_loopback_prints_a_token_url_and_refuses_requests_without_it(tmp_path):
    folder = copy_sample(tmp_path)
    port = free_port()
    process = _serve([str(folder), "--host", "0.0.0.0", "--port", str(port)], env={"FOUNTAIN_STUDIO_TOKEN": "tok-123"})
    try:
        assert _get(f"http://127.0.0.1:{port}/").code == 401
        assert _get(f"http://127.0.0.1:{port}/?token=tok-123").status == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "?token=tok-123" in err.decode()


def test_studio_on_a_missing_folder_is_a_usage_error(tmp_path):
    process = _serve([str(tmp_path / "nope")])
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "does not exist" in err.decode()
