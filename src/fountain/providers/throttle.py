"""Flow control for provider calls: retry delays, an AIMD concurrency limit and rate buckets.

- :class:`RetryPolicy`: full-jitter exponential backoff; a provider's ``Retry-After`` is obeyed
  when given, up to ``max_retry_after`` seconds (default 120, ``FOUNTAIN_MAX_RETRY_AFTER``): a
  server cannot stall a run with ``Retry-After: 100000``, ``inf`` or ``nan``.
- :class:`AdaptiveLimiter`: a dynamic concurrency limit, cut multiplicatively on a 429 and
  recovered additively on success (AIMD, as TCP does), plus token buckets for requests per
  minute and tokens per minute (tokens estimated before the call, corrected by the usage the
  provider reports).

Everything here is cheap enough for the hot path: the uncontended ``acquire`` does not suspend.
The clock and the sleep function are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

DEFAULT_MAX_RETRY_AFTER = 120.0
MAX_RETRY_AFTER_ENV = "FOUNTAIN_MAX_RETRY_AFTER"


def max_retry_after_from_env() -> float:
    """The cap on a server's ``Retry-After``: ``FOUNTAIN_MAX_RETRY_AFTER`` seconds, else 120."""
    try:
        value = float(os.environ.get(MAX_RETRY_AFTER_ENV, ""))
    except ValueError:
        return DEFAULT_MAX_RETRY_AFTER
    return value if math.isfinite(value) and value >= 0 else DEFAULT_MAX_RETRY_AFTER


@dataclass
class RetryPolicy:
    """How often and after how long a retryable failure is tried again.

    ``max_attempts`` counts every try, the first included. ``delay(attempt)`` is the pause after
    the ``attempt``-th failed try (1-based): uniform in ``[0, min(max_delay, base_delay *
    2**(attempt-1))]`` with ``jitter`` (full jitter spreads retries of many concurrent requests),
    the upper end without it.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True
    max_retry_after: float = field(default_factory=max_retry_after_from_env)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt``; ``retry_after`` wins when given."""
        if retry_after is not None and retry_after >= 0:  # False for NaN
            return min(float(retry_after), self.max_retry_after)
        cap = min(self.max_delay, self.base_delay * (2.0 ** max(attempt - 1, 0)))
        return self.rng.uniform(0.0, cap) if self.jitter else cap


class TokenBucket:
    """A bucket refilled at ``per_minute / 60`` units per second, holding at most ``capacity``.

    ``reserve(n)`` takes ``n`` units at once, possibly going into debt, and returns how long the
    caller must wait before its units exist: reservations are served in call order with no
    polling loop. ``adjust(delta)`` corrects a reservation once the true size is known.
    """

    def __init__(
        self, per_minute: float, *, capacity: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        # Default burst: one second's worth (at least 1 unit), so a fresh run does not fire a
        # whole minute's allowance at once and trip a provider that checks over shorter windows.
        self.capacity = float(capacity) if capacity is not None else max(1.0, self.rate)
        self._clock = clock
        self._level = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self, units: float) -> float:
        self._refill()
        self._level -= units
        return 0.0 if self._level >= 0 else -self._level / self.rate

    def adjust(self, delta: float) -> None:
        """``delta`` more units were used than reserved (negative: fewer; they come back)."""
        self._refill()
        self._level = min(self.capacity, self._level - delta)

    @property
    def level(self) -> float:
        self._refill()
        return self._level


@dataclass
class Permit:
    """One granted slot; give it back with :meth:`AdaptiveLimiter.release`."""

    tokens: float
    epoch: int
    released: bool = False
    rate_limited: bool = False


class AdaptiveLimiter:
    """Concurrency limit with AIMD adaptation and optional requests/tokens-per-minute buckets.

    ``limit`` starts at ``max_concurrency``. A 429 halves it (``decrease``) once 429s are not
    isolated any more: when at least ``tolerance`` of the last ``window`` answers were 429s
    (``tolerance=0``: every 429 counts). An isolated 429 is only retried after its
    ``Retry-After``: under random rate limiting, cutting on each one would collapse the
    concurrency (as TCP's window does under random loss), while a provider that is really over
    its limit answers many 429s at once. A cut happens at most once per round trip (requests
    already in flight when it was cut do not cut it again) and at most once per ``cooldown_s``.
    Each success adds ``increase / limit``, so the limit grows back by about ``increase`` per round
    of ``limit`` requests.
    """

    def __init__(
        self,
        max_concurrency: int,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        min_concurrency: int = 1,
        decrease: float = 0.5,
        increase: float = 1.0,
        cooldown_s: float = 1.0,
        tolerance: float = 0.2,
        window: int = 50,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if max_concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.max_concurrency = int(max_concurrency)
        self.min_concurrency = max(1, min(int(min_concurrency), self.max_concurrency))
        self.decrease = decrease
        self.increase = increase
        self._limit = float(self.max_concurrency)
        self._active = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sleep = sleep
        self._clock = clock
        self.cooldown_s = cooldown_s
        self._last_cut: float | None = None
        self.tolerance = tolerance
        self._recent: deque[bool] = deque(maxlen=max(1, int(window)))
        self._min_samples = max(1, int(window))  # judge on a full window
        self._limited_in_window = 0
        self.requests = TokenBucket(rpm, clock=clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock=clock) if tpm else None
        self.rate_limited = 0  # 429s seen
        self.cuts = 0  # times the limit was actually cut

    @property
    def limit(self) -> int:
        """The current concurrency limit (whole requests)."""
        return max(self.min_concurrency, int(self._limit))

    @property
    def active(self) -> int:
        return self._active

    async def acquire(self, tokens: float = 0.0) -> Permit:
        """Wait for a slot (and rate allowance); ``tokens`` is the request's estimated size."""
        if self._active < self.limit and not self._waiters:
            self._active += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._active -= 1  # the slot was granted just as we were cancelled
                    self._wake()
                else:
                    try:
                        self._waiters.remove(future)
                    except ValueError:
                        pass
                raise
        permit = Permit(tokens, self._epoch)
        try:
            wait = 0.0
            if self.requests is not None:
                wait = self.requests.reserve(1)
            if self.tokens is not None and tokens:
                wait = max(wait, self.tokens.reserve(tokens))
            if wait > 0:
                await self._sleep(wait)
        except BaseException:
            self._give_back(permit, used_tokens=0.0)
            raise
        return permit

    def release(
        self,
        permit: Permit,
        *,
        used_tokens: float | None = None,
        rate_limited: bool = False,
        success: bool | None = None,
    ) -> None:
        """Return a slot. ``used_tokens``: actual usage (corrects the tokens bucket).

        ``rate_limited=True`` reports a 429 (cuts the limit); otherwise ``success`` (default: not
        rate limited) grows it.
        """
        if permit.released:
            return
        if rate_limited and not permit.rate_limited:
            self.on_rate_limited(permit)
        elif (success is None or success) and not permit.rate_limited:
            self.on_success()
        self._give_back(permit, used_tokens)

    def on_rate_limited(self, permit: Permit | None = None) -> None:
        """A 429: cut the limit when 429s are no longer isolated (see the class docstring), unless
        a cut already happened since ``permit`` was granted or within the cooldown."""
        self.rate_limited += 1
        self._note(True)
        if permit is not None:
            permit.rate_limited = True
            if permit.epoch != self._epoch:
                return
        if self._limited_in_window < self.tolerance * len(self._recent) or (
            self.tolerance and len(self._recent) < self._min_samples
        ):
            return
        now = self._clock()
        if self._last_cut is not None and now - self._last_cut < self.cooldown_s:
            return
        self._last_cut = now
        self._limit = max(float(self.min_concurrency), self._limit * self.decrease)
        self._epoch += 1
        self.cuts += 1

    def on_success(self) -> None:
        self._note(False)
        if self._limit < self.max_concurrency:
            self._limit = min(float(self.max_concurrency), self._limit + self.increase / self._limit)

    def _note(self, limited: bool) -> None:
        recent = self._recent
        if len(recent) == recent.maxlen and recent[0]:
            self._limited_in_window -= 1
        recent.append(limited)
        if limited:
            self._limited_in_window += 1

    def _give_back(self, permit: Permit, used_tokens: float | None) -> None:
        permit.released = True
        if self.tokens is not None and used_tokens is not None:
            self.tokens.adjust(used_tokens - permit.tokens)
        self._active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._active < self.limit:
            future = self._waiters.popleft()
            if future.done():  # cancelled while waiting
                continue
            self._active += 1
            future.set_result(None)

    def slot(self, tokens: float = 0.0) -> _Slot:
        """``async with limiter.slot(tokens) as permit:`` acquires, and releases on exit: a
        success when the block ends normally (call :meth:`on_rate_limited` with the permit inside
        the block to report a 429)."""
        return _Slot(self, tokens)


class _Slot:
    def __init__(self, limiter: AdaptiveLimiter, tokens: float):
        self._limiter = limiter
        self._tokens = tokens
        self.permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        self.permit = await self._limiter.acquire(self._tokens)
        return self.permit

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.permit is not None
        self._limiter.release(self.permit, success=exc_type is None)
