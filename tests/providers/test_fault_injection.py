"""A run against a server failing 20% of requests (429 with Retry-After, 500, timeouts, malformed
JSON) completes: every failure is retried, or its task is rejected with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from fountain import generate_async
from fountain.run.options import RunOptions
from fountain.spec.load import load_spec

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "marriage_counsel"


@pytest.fixture
def spec_folder(tmp_path) -> Path:
    folder = tmp_path / "spec"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("output"))
    setup = folder / "setup.yaml"
    data = yaml.safe_load(setup.read_text())
    # A hung request (the "timeout" fault) is given up after a second, then retried.
    data.setdefault("model", {})["timeout_s"] = 1
    # The mock's answers are templated text that dedup (a later stage) would mostly drop.
    data.setdefault("raters", {})["dedup"] = {"enabled": False}
    setup.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return folder


async def test_twenty_percent_faults_every_failure_retried_or_rejected(spec_folder, tmp_path, mock_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    mock_server.configure(latency_ms=5, error_rate=0.2, retry_after="0.2", timeout_s=3, seed=3)
    out = tmp_path / "out"
    options = RunOptions(
        output=out,
        provider="openai",
        model="mock-model",
        base_url=mock_server.openai_base_url,
        seed=11,
        concurrency=8,
        seeds_per_direction=6,
        derivations_per_direction=1,
        quiet=True,
    )
    result = await generate_async(load_spec(spec_folder), options)

    statuses = mock_server.stats()["statuses"]
    faults = {k: v for k, v in statuses.items() if k != "200"}
    assert faults.get("429", 0) > 0 and faults.get("500", 0) > 0, statuses
    stats = result.stats
    # Every failed attempt the client saw was retried, or ended its request for good.
    failed_attempts = sum(stats.errors.values())
    assert failed_attempts >= sum(faults.values())  # + timeouts and malformed 200s
    assert stats.errors["RateLimitError"] == faults["429"]
    assert stats.retries + stats.failed == failed_attempts
    assert stats.retries > 0

    # Every task ended accepted or rejected with a reason.
    seeds = [json.loads(line) for line in (out / "seeds.jsonl").read_text().splitlines()]
    derivations = [json.loads(line) for line in (out / "derivations.jsonl").read_text().splitlines()]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(seeds) + sum(r["kind"] == "seed" for r in rejects) == result.counts["seeds_requested"] == 12
    assert len(derivations) + sum(r["kind"] == "derivation" for r in rejects) == result.counts["derivations_planned"]
    for reject in rejects:
        assert reject["reason"] and reject["detail"]
    # A request that failed for good is a provider_error reject naming the error.
    provider_rejects = [r for r in rejects if r["reason"] == "provider_error"]
    assert len(provider_rejects) == stats.failed
    # With 8 tries per request, a transient fault rate of 20% loses no task (0.2**8 per request).
    assert stats.failed == 0 and provider_rejects == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert result.dataset_records == len(seeds) + len(derivations) > 0
