"""``--executor ray`` on a local Ray (2 CPUs): the local executor's dataset, limits that hold for
the whole cluster, and resume after the driver is killed (slow: starting Ray takes seconds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fountain import generate
from fountain.run.options import RunOptions
from fountain.spec.load import load_spec
from fountain.testing.mock_server import start_in_thread
from spec_helpers import VALID, make_spec

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = pytest.mark.slow

SRC = str(Path(__file__).resolve().parents[2] / "src")
NO_EMBEDDINGS = "raters:\n  dedup:\n    embedding_threshold: null\n"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs, no dashboard); workers import fountain from src."""
    if ray.is_initialized():
        ray.shutdown()
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, before) if p)
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _spec(tmp_path: Path, seeds: int, derivations: int = 1):
    setup = VALID.replace("seeds_per_direction: 1", f"seeds_per_direction: {seeds}")
    setup = setup.replace("  max_turns: 4\n", f"  max_turns: 4\n  derivations_per_direction: {derivations}\n")
    return load_spec(make_spec(tmp_path, setup + NO_EMBEDDINGS))


def _conversations(folder: Path) -> list[str]:
    """The dataset as a multiset of conversations (the records' messages, sorted)."""
    lines = (folder / "dataset.jsonl").read_text().splitlines()
    return sorted(json.dumps(json.loads(line)["messages"], sort_keys=True) for line in lines)


def test_ray_executor_gives_the_local_executors_dataset(local_ray, tmp_path):
    spec = _spec(tmp_path, seeds=6)
    local = generate(spec, RunOptions(output=tmp_path / "local", provider="fake", seed=3, quiet=True))
    on_ray = generate(
        spec, RunOptions(output=tmp_path / "ray", provider="fake", seed=3, quiet=True, executor="ray", ray_actors=2)
    )
    assert local.dataset_records == on_ray.dataset_records > 6
    assert _conversations(tmp_path / "local") == _conversations(tmp_path / "ray")
    # the driver counted what the actors did
    assert on_ray.stats.completed == local.stats.completed and on_ray.stats.usage == local.stats.usage
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["status"] == "completed"


def test_rpm_limit_holds_across_two_actors(local_ray, tmp_path):
    server = start_in_thread(latency_ms=5)
    try:
        spec = _spec(tmp_path, seeds=12, derivations=0)
        options = RunOptions(
            output=tmp_path / "out",
            provider="openai",
            model="m",
            base_url=server.openai_base_url,
            rpm=60,
            concurrency=8,
            executor="ray",
            ray_actors=2,
            quiet=True,
            no_cache=True,
        )
        result = generate(spec, options)
        times = sorted(r.received_at for r in server.requests)
    finally:
        server.stop()
    assert result.dataset_records > 0 and len(times) >= 12
    # one request a second for the cluster (a burst of one): two actors each holding their own
    # 60 rpm would send about two a second
    rate = (len(times) - 1) / (times[-1] - times[0]) * 60
    assert rate <= 60 * 1.1, f"{rate:.1f} requests per minute across two actors"


def test_killed_driver_resumes_by_task_id_without_asking_answered_requests_again(local_ray, tmp_path):
    server = start_in_thread(latency_ms=150)
    try:
        spec_folder = make_spec(
            tmp_path,
            VALID.replace("seeds_per_direction: 1", "seeds_per_direction: 10").replace(
                "  max_turns: 4\n", "  max_turns: 4\n  derivations_per_direction: 1\n"
            )
            + NO_EMBEDDINGS,
        )
        output = tmp_path / "out"
        command = [sys.executable, "-m", "fountain", "run", "-t", str(spec_folder), "-o", str(output), "-q"]
        command += ["--provider", "openai", "--model", "m", "--base-url", server.openai_base_url, "--seed", "1"]
        command += ["--executor", "ray", "--ray-address", local_ray, "--concurrency", "2"]
        env = {**os.environ, "PYTHONPATH": os.environ["PYTHONPATH"]}
        env.pop("OPENAI_API_KEY", None)
        driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seeds = output / "seeds.jsonl"
        deadline = time.monotonic() + 120
        while not (seeds.is_file() and len(seeds.read_bytes().splitlines()) >= 3):
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the driver wrote no seeds in 120 s"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
        journaled = len(seeds.read_bytes().splitlines())
        assert journaled < 10  # killed mid-run

        resumed = subprocess.run(command, env=env, capture_output=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
        duplicates = server.duplicates()
    finally:
        server.stop()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "completed" and len(manifest["runs"]) == 2
    records = (output / "dataset.jsonl").read_text().splitlines()
    assert len(records) >= 10
    # answers that reached the driver were journaled or cached: only requests in flight at the
    # kill (at most the concurrency, 2, each with its re-asks) can have been answered twice
    assert sum(n - 1 for n in duplicates.values()) <= 2 * 3, duplicates
