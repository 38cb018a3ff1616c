"""The Dispatcher against a scripted provider: cache, retries, stops, accounting."""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatch_helpers import PRICES, Sleeps, request
from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ErrorRateError,
    FountainError,
    QuotaExceededError,
    RateLimitError,
    TransientProviderError,
)
from fountain.providers.base import Completion
from fountain.providers.cache import ResponseCache
from fountain.providers.dispatch import Dispatcher, RunStats
from fountain.providers.throttle import RetryPolicy
from fountain.testing import ScriptedProvider
from fountain.types import Usage


def dispatcher(provider, **kwargs) -> tuple[Dispatcher, Sleeps]:
    sleeps = Sleeps()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0, jitter=False))
    kwargs.setdefault("prices", PRICES)
    return Dispatcher(provider, sleep=sleeps, **kwargs), sleeps


async def test_429_is_retried_after_the_retry_after_the_provider_gave():
    provider = ScriptedProvider([RateLimitError("slow down", retry_after=7.0), RateLimitError("again")])
    d, sleeps = dispatcher(provider, concurrency=8)
    completion = await d.complete(request())
    assert completion.text == "answer 3"
    assert sleeps.requested == [7.0, 2.0]  # Retry-After exactly, then the backoff (attempt 2)
    assert d.stats.retries == 2 and d.stats.rate_limited == 2 and d.stats.requests == 3
    # Two 429s among three answers is too little history to call it overload: no cut yet.
    assert d.limiter.rate_limited == 2 and d.limiter.cuts == 0
    assert d.stats.errors["RateLimitError"] == 2


async def test_transient_errors_back_off_then_succeed():
    provider = ScriptedProvider([TransientProviderError("500"), asyncio.TimeoutError(), TransientProviderError("502")])
    d, sleeps = dispatcher(provider)
    completion = await d.complete(request())
    assert completion.text == "answer 4"
    assert sleeps.requested == [1.0, 2.0, 4.0]
    assert d.stats.retries == 3 and d.stats.failed == 0
    assert d.stats.errors == {"TransientProviderError": 3}


async def test_after_max_attempts_the_last_error_is_raised():
    provider = ScriptedProvider([TransientProviderError(f"500 #{i}") for i in range(10)])
    d, sleeps = dispatcher(provider)
    with pytest.raises(TransientProviderError, match="500 #3"):
        await d.complete(request())
    assert len(provider.calls) == 4 and len(sleeps.requested) == 3
    assert d.stats.failed == 1
    assert d.stopped is None  # one failed request does not stop the run


async def test_auth_error_is_raised_at_once_and_stops_later_requests():
    provider = ScriptedProvider([AuthenticationError("bad key", status=401)])
    d, sleeps = dispatcher(provider)
    with pytest.raises(AuthenticationError):
        await d.complete(request(0))
    assert sleeps.requested == [] and len(provider.calls) == 1
    with pytest.raises(AuthenticationError):
        await d.complete(request(1))
    assert len(provider.calls) == 1  # the second request never reached the provider


async def test_quota_error_stops_the_run():
    provider = ScriptedProvider([QuotaExceededError("no credit", status=429)])
    d, _ = dispatcher(provider)
    with pytest.raises(QuotaExceededError):
        await d.complete(request())
    assert isinstance(d.stopped, QuotaExceededError)


async def test_a_bad_request_fails_that_request_only():
    provider = ScriptedProvider([BadRequestError("context too long", status=400)])
    d, _ = dispatcher(provider)
    with pytest.raises(BadRequestError):
        await d.complete(request(0))
    assert (await d.complete(request(1))).text == "answer 2"


async def test_cache_hit_makes_no_provider_call_and_costs_nothing(tmp_path):
    provider = ScriptedProvider()
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        d, _ = dispatcher(provider, cache=cache)
        first = await d.complete(request(0))
        cost = d.stats.cost_usd
        again = await d.complete(request(0))
        assert again == first and len(provider.calls) == 1
        assert d.stats.cache_hits == 1 and d.stats.cost_usd == cost
        await d.complete(request(1))  # another sample index: a new call
        assert len(provider.calls) == 2
    # A new dispatcher (a resumed run) gets the answers from the file.
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        d2, _ = dispatcher(ScriptedProvider(), cache=cache)
        assert (await d2.complete(request(0))) == first
        assert d2.stats.requests == 0 and d2.stats.cache_hits == 1


async def test_the_provider_span_runs_from_the_first_send_to_the_last_answer(tmp_path):
    class Slow(ScriptedProvider):
        async def complete(self, request):
            await asyncio.sleep(0.05)
            return await super().complete(request)

    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        d, _ = dispatcher(Slow(), cache=cache, concurrency=2)
        assert d.stats.provider_span_s == 0.0
        start = time.monotonic()
        await d.complete(request(0))
        await asyncio.sleep(0.2)  # idle time after the last answer is not in the span
        await d.complete(request(0))  # a cache hit sends nothing: the span stays
        span = d.stats.provider_span_s
        assert 0.04 <= span <= time.monotonic() - start - 0.19
        await asyncio.gather(d.complete(request(1)), d.complete(request(2)))
        assert d.stats.provider_span_s >= span + 0.2 + 0.04


async def test_failures_are_not_cached(tmp_path):
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        d, _ = dispatcher(ScriptedProvider([BadRequestError("no")]), cache=cache)
        with pytest.raises(BadRequestError):
            await d.complete(request())
        assert len(cache) == 0


async def test_usage_and_cost_are_recorded():
    d, _ = dispatcher(ScriptedProvider(usage=Usage(1000, 500)))
    for i in range(4):
        await d.complete(request(i))
    assert d.stats.usage == Usage(4000, 2000)
    assert d.stats.cost_usd == pytest.approx(4 * (1000 * 1.0 + 500 * 2.0) / 1e6)
    assert d.stats.completed == 4 and d.stats.unpriced == 0


async def test_unknown_model_is_counted_unpriced_not_a_crash(caplog):
    d, _ = dispatcher(ScriptedProvider(model="my-finetune"))
    await d.complete(request(0))
    await d.complete(request(1))
    assert d.stats.unpriced == 2 and d.stats.cost_usd == 0.0
    assert sum("no price known" in r.message for r in caplog.records) == 1


async def test_budget_stops_before_it_is_exceeded():
    # Each request: ~3 prompt tokens + max_tokens 100_000 completion at $2/1M = $0.2 at most.
    provider = ScriptedProvider(usage=Usage(10, 100_000))
    d, _ = dispatcher(provider, budget_usd=0.5)
    await d.complete(request(0, max_tokens=100_000))
    await d.complete(request(1, max_tokens=100_000))
    with pytest.raises(BudgetExceededError) as info:
        await d.complete(request(2, max_tokens=100_000))
    assert len(provider.calls) == 2
    assert d.stats.cost_usd <= 0.5
    assert "$0.4000 spent" in info.value.message and "--budget" in info.value.hint
    with pytest.raises(BudgetExceededError):  # latched
        await d.complete(request(3, max_tokens=10))


async def test_budget_counts_what_an_earlier_session_spent():
    provider = ScriptedProvider(usage=Usage(10, 100))
    d, _ = dispatcher(provider, budget_usd=1.0, stats=RunStats.resumed(Usage(0, 0), cost_usd=0.9999))
    with pytest.raises(BudgetExceededError):
        await d.complete(request(0, max_tokens=1000))
    assert provider.calls == []


async def test_budget_counts_requests_in_flight():
    gate = asyncio.Event()

    class Slow(ScriptedProvider):
        async def complete(self, request):
            await gate.wait()
            return await super().complete(request)

    provider = Slow(usage=Usage(10, 100_000))
    d, _ = dispatcher(provider, budget_usd=0.5, concurrency=8)
    tasks = [asyncio.ensure_future(d.complete(request(i, max_tokens=100_000))) for i in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, Completion) for r in results) == 2
    assert all(isinstance(r, BudgetExceededError) for r in results if not isinstance(r, Completion))
    assert d.stats.cost_usd <= 0.5


def test_budget_without_a_price_is_refused_up_front():
    with pytest.raises(FountainError, match="price"):
        Dispatcher(ScriptedProvider(model="my-finetune"), budget_usd=1.0, prices=PRICES)


async def test_error_rate_over_the_window_stops_the_run():
    script = []
    for i in range(40):  # every other attempt fails: 50% is not *over* 50%; then all fail
        script.append(TransientProviderError("500") if i % 2 else None)
    script += [TransientProviderError("500")] * 40
    provider = ScriptedProvider(script)
    d, _ = dispatcher(provider, retry=RetryPolicy(max_attempts=1), max_error_rate=0.5, error_window=20)
    outcomes = []
    with pytest.raises(ErrorRateError) as info:
        for i in range(80):
            try:
                await d.complete(request(i))
                outcomes.append("ok")
            except TransientProviderError:
                outcomes.append("failed")
    assert outcomes.count("ok") == 20
    assert "of the last 20 requests" in info.value.message
    calls = len(provider.calls)
    with pytest.raises(ErrorRateError):
        await d.complete(request(999))
    assert len(provider.calls) == calls


async def test_rate_limits_do_not_count_as_failures():
    provider = ScriptedProvider([RateLimitError("429", retry_after=0)] * 30)
    d, _ = dispatcher(provider, retry=RetryPolicy(max_attempts=40), error_window=10)
    assert (await d.complete(request())).text == "answer 31"
    assert d.stopped is None


async def test_concurrency_is_bounded():
    running = peak = 0

    class Counting(ScriptedProvider):
        async def complete(self, request):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1
            return await super().complete(request)

    d, _ = dispatcher(Counting(), concurrency=5)
    await asyncio.gather(*(d.complete(request(i)) for i in range(40)))
    assert peak == 5 and d.stats.completed == 40


async def test_a_storm_of_429s_cuts_the_concurrency():
    script = []
    for _ in range(40):  # every request is rate limited once before it succeeds
        script += [RateLimitError("429", retry_after=0.0), None]
    d, sleeps = dispatcher(ScriptedProvider(script), concurrency=16)
    for i in range(40):
        await d.complete(request(i))
    assert d.stats.rate_limited == 40 and sleeps.requested == [0.0] * 40
    assert d.limiter.cuts >= 1 and d.limiter.limit < 16
