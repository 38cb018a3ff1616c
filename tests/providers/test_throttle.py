"""Retry delays, AIMD concurrency and token buckets, on a fake clock (no timing assertions)."""

from __future__ import annotations

import asyncio
import random

import pytest

from fountain.providers.throttle import AdaptiveLimiter, RetryPolicy, TokenBucket


class FakeClock:
    """A clock that only moves when a sleep is requested; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- RetryPolicy ------------------------------------------------------------------------------


def test_retry_after_is_honoured_exactly():
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    assert policy.delay(1, retry_after=7.5) == 7.5  # even above max_delay: the provider said so
    assert policy.delay(5, retry_after=0.0) == 0.0


def test_backoff_without_jitter_doubles_up_to_the_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, jitter=False)
    assert [policy.delay(a) for a in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_within_the_exponential_envelope():
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0, rng=random.Random(7))
    for attempt in range(1, 10):
        cap = min(30.0, 2.0 ** (attempt - 1))
        draws = [policy.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8 and min(draws) < cap * 0.2  # spread over the whole range


def test_retry_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --- TokenBucket ------------------------------------------------------------------------------


def test_bucket_reservations_are_served_in_order_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(60, capacity=2, clock=clock)  # 1 unit per second, burst of 2
    waits = [bucket.reserve(1) for _ in range(5)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 3.0]
    clock.now = 10.0  # refills up to the capacity only
    assert bucket.level == 2.0


def test_bucket_adjust_corrects_an_estimate():
    clock = FakeClock()
    bucket = TokenBucket(6000, capacity=100, clock=clock)  # 100 tokens/s
    assert bucket.reserve(100) == 0.0
    bucket.adjust(-60)  # the request used 40 tokens, not 100: 60 come back
    assert bucket.level == pytest.approx(60.0)
    bucket.adjust(+160)  # it used 160 more than reserved: the bucket goes into debt
    assert bucket.reserve(0) == pytest.approx(1.0)


def test_request_larger_than_the_bucket_waits_instead_of_deadlocking():
    clock = FakeClock()
    bucket = TokenBucket(600, capacity=10, clock=clock)  # 10/s
    assert bucket.reserve(50) == pytest.approx(4.0)


# --- AdaptiveLimiter: concurrency -------------------------------------------------------------


async def test_concurrency_never_exceeds_the_limit():
    limiter = AdaptiveLimiter(3)
    running = peak = 0

    async def job() -> None:
        nonlocal running, peak
        async with limiter.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak == 3
    assert limiter.active == 0


async def test_a_429_halves_the_limit_once_per_round_trip():
    clock = FakeClock()
    limiter = AdaptiveLimiter(16, clock=clock, cooldown_s=0, tolerance=0)
    permits = [await limiter.acquire() for _ in range(8)]
    # Eight requests in flight all come back 429: only the first cuts the limit, the others were
    # sent before the cut and say nothing new about the new limit.
    for permit in permits:
        limiter.release(permit, rate_limited=True)
    assert limiter.limit == 8
    assert limiter.cuts == 1 and limiter.rate_limited == 8
    # A request granted after the cut that is also limited cuts again.
    permit = await limiter.acquire()
    limiter.release(permit, rate_limited=True)
    assert limiter.limit == 4


async def test_limit_recovers_additively_and_never_passes_the_maximum():
    limiter = AdaptiveLimiter(8, min_concurrency=1, cooldown_s=0, tolerance=0)
    for _ in range(5):  # 8 -> 4 -> 2 -> 1 -> 1 -> 1
        limiter.release(await limiter.acquire(), rate_limited=True)
    assert limiter.limit == 1
    successes = 0
    while limiter.limit < 4:
        limiter.release(await limiter.acquire())
        successes += 1
    # +1/limit per success: about limit successes per step (1 + 2 + 3 = 6 to get from 1 to 4)
    assert 5 <= successes <= 7
    for _ in range(500):
        limiter.release(await limiter.acquire())
    assert limiter.limit == 8


async def test_at_most_one_cut_per_cooldown():
    clock = FakeClock()
    limiter = AdaptiveLimiter(64, clock=clock, cooldown_s=1.0, tolerance=0)
    for _ in range(5):  # a burst of 429s on fresh requests, all within one second
        limiter.release(await limiter.acquire(), rate_limited=True)
        clock.now += 0.1
    assert limiter.limit == 32 and limiter.cuts == 1
    clock.now += 1.0
    limiter.release(await limiter.acquire(), rate_limited=True)
    assert limiter.limit == 16 and limiter.cuts == 2


async def test_isolated_429s_are_tolerated_a_storm_is_not():
    clock = FakeClock()
    limiter = AdaptiveLimiter(64, clock=clock, tolerance=0.2, window=20, cooldown_s=0)
    # One 429 in ten answers (10% < 20%): retried by the dispatcher, the limit stays.
    for i in range(100):
        limiter.release(await limiter.acquire(), rate_limited=(i % 10 == 9))
        clock.now += 0.01
    assert limiter.limit == 64 and limiter.cuts == 0 and limiter.rate_limited == 10
    # The provider is over its limit: most answers are 429s. The limit is cut, once per round trip.
    for _ in range(6):
        limiter.release(await limiter.acquire(), rate_limited=True)
    assert limiter.cuts >= 1 and limiter.limit <= 32


async def test_failures_that_are_not_429_do_not_move_the_limit():
    limiter = AdaptiveLimiter(8, tolerance=0)
    limiter.release(await limiter.acquire(), rate_limited=True)
    assert limiter.limit == 4
    for _ in range(20):
        limiter.release(await limiter.acquire(), success=False)
    assert limiter.limit == 4


async def test_a_cut_makes_new_requests_wait_for_running_ones():
    limiter = AdaptiveLimiter(4, tolerance=0)
    permits = [await limiter.acquire() for _ in range(4)]
    limiter.release(permits.pop(), rate_limited=True)  # limit 2, 3 still running
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    limiter.release(permits.pop())  # 2 running: still at the limit
    await asyncio.sleep(0)
    assert not waiter.done()
    limiter.release(permits.pop())  # 1 running: room for one
    await asyncio.sleep(0)
    assert waiter.done()
    limiter.release(waiter.result())
    limiter.release(permits.pop())
    assert limiter.active == 0


async def test_a_cancelled_waiter_does_not_leak_a_slot():
    limiter = AdaptiveLimiter(1)
    held = await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release(held)
    assert limiter.active == 0
    again = await asyncio.wait_for(limiter.acquire(), 1)
    limiter.release(again)
    assert limiter.active == 0


# --- AdaptiveLimiter: rate buckets -------------------------------------------------------------


async def test_requests_per_minute_spaces_requests():
    clock = FakeClock()
    limiter = AdaptiveLimiter(100, rpm=120, clock=clock, sleep=clock.sleep)  # 2/s, burst of 2
    for _ in range(6):
        limiter.release(await limiter.acquire())
    # Two go at once (the burst), then one every half second.
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert clock.now == pytest.approx(2.0)


async def test_concurrent_requests_reserve_their_turn_without_polling():
    clock = FakeClock()
    recorded: list[float] = []

    async def record_only(seconds: float) -> None:  # time stands still: each waits its own turn
        recorded.append(seconds)

    limiter = AdaptiveLimiter(100, rpm=120, clock=clock, sleep=record_only)
    permits = await asyncio.gather(*(limiter.acquire() for _ in range(6)))
    assert recorded == pytest.approx([0.5, 1.0, 1.5, 2.0])
    for permit in permits:
        limiter.release(permit)


async def test_tokens_per_minute_uses_estimates_then_actual_usage():
    clock = FakeClock()
    limiter = AdaptiveLimiter(100, tpm=60_000, clock=clock, sleep=clock.sleep)  # 1000 tokens/s
    permit = await limiter.acquire(tokens=1000)  # the whole burst
    assert clock.sleeps == []
    limiter.release(permit, used_tokens=200)  # 800 of the estimate come back
    permit = await limiter.acquire(tokens=800)
    assert clock.sleeps == []
    limiter.release(permit, used_tokens=800)
    permit = await limiter.acquire(tokens=500)  # bucket empty: wait for 500 tokens
    assert clock.sleeps == pytest.approx([0.5])
    limiter.release(permit, used_tokens=500)


def test_limiter_rejects_nonsense():
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, rpm=-1)
