"""Fuzzed provider answers through the real HTTP client and the loopback mock server: every one
ends accepted (and survives the response cache) or rejected with a reason; never a traceback.
``benchmarks/fuzz.py`` runs 10,000 of them."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from fountain.providers import create_provider  # noqa: E402
from fountain.providers.base import ProviderConfig  # noqa: E402
from fountain.providers.cache import ResponseCache  # noqa: E402
from fountain.testing.fuzz import answer_outcome, answer_strategy  # noqa: E402


@pytest.fixture
def fuzz_client(mock_server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fuzz-0123456789")
    monkeypatch.setenv("FOUNTAIN_MAX_RETRY_AFTER", "0")
    loop = asyncio.new_event_loop()
    config = ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=10)
    provider = loop.run_until_complete(_make(config))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    yield provider, cache, loop
    cache.close()
    loop.run_until_complete(provider.aclose())
    loop.close()


async def _make(config):
    return create_provider(config)


def test_fuzzed_answers_end_accepted_or_rejected_with_a_reason(mock_server, fuzz_client):
    provider, cache, loop = fuzz_client
    outcomes: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(answer_strategy())
    def check(answer):
        mock_server.configure(raw_answers=[answer])
        outcomes[answer_outcome(provider, cache, loop, sum(outcomes.values()))] += 1

    check()
    assert outcomes["accepted"] > 0
    assert sum(n for k, n in outcomes.items() if k.startswith("rejected:")) > 0
