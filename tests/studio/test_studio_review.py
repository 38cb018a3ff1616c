"""The data page over a real (fake-provider) run: the report is built and served from the
folder, in a sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install 'fountain[studio]')")

from starlette.testclient import TestClient  # noqa: E402

from fountain.studio.app import create_app  # noqa: E402
from studio_helpers import copy_sample  # noqa: E402

LOCAL = "http://127.0.0.1:8765"
ORIGIN = {"origin": LOCAL}
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow  # a fake run and `fountain report` in subprocesses: about 25 s on 2 cores
def test_the_report_of_a_run_is_built_and_served_in_a_sandbox(tmp_path):
    folder = copy_sample(tmp_path)
    with open(folder / "setup.yaml", "a") as handle:
        handle.write("\nraters:\n  dedup:\n    enabled: false\n")
    client = TestClient(create_app([folder], token="t"), base_url=LOCAL)
    assert client.post("/api/folders/0/report", json={}, headers=ORIGIN).status_code == 400  # no run yet
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "fountain", "run", "-t", str(folder), "--provider", "fake", "--seed", "1", "-q"]
    subprocess.run(command, check=True, env=env, timeout=300)
    response = client.post("/api/folders/0/report", json={}, headers=ORIGIN)
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    assert url == "/api/folders/0/files/output/report.html"
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["content-security-policy"].startswith("sandbox")
    listing = client.get("/api/folders/0/records").json()
    assert listing["total"] == len((folder / "output" / "dataset.jsonl").read_text().splitlines())
