"""The way every request reaches a provider: cache → budget → rate limiter → provider → retries.

:class:`Dispatcher` is created once per run and shared by all the engine's tasks. It owns the
flow control (:mod:`fountain.providers.throttle`), the response cache (:mod:`fountain.providers.cache`) and the cost
accounting (:mod:`fountain.providers.cost`), and keeps the numbers of the run in a :class:`RunStats`.

Stop conditions raise a :class:`~fountain.errors.FountainError` and latch: once the budget is
reached, the error rate is too high or the provider refused the key/model/quota, every later
``complete`` raises the same error at once, so the engine winds down cleanly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fountain.errors import (
    AuthenticationError,
    BudgetExceededError,
    ErrorRateError,
    FountainError,
    MissingAPIKeyError,
    MissingDependencyError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    TransientProviderError,
)
from fountain.providers.base import Completion, Provider, Request
from fountain.providers.cache import ResponseCache, public_identity, request_key
from fountain.providers.cost import PriceTable, estimate_tokens
from fountain.providers.throttle import AdaptiveLimiter, RetryPolicy
from fountain.types import Usage

# Errors after which no other request can succeed: stop the run instead of failing each request.
FATAL_ERRORS = (AuthenticationError, QuotaExceededError, ModelNotFoundError, MissingAPIKeyError, MissingDependencyError)
# Completion size assumed for the budget check when the request sets no max_tokens and no answer
# has been seen yet; afterwards the largest answer seen so far is used.
DEFAULT_COMPLETION_ESTIMATE = 1024


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunStats:
    """Numbers of a run. Counters are for this process; ``cost_usd`` and ``usage`` may start from
    an earlier session of the same output (resume), so a budget covers the whole run."""

    requests: int = 0  # attempts sent to the provider (retries included)
    completed: int = 0  # requests answered by the provider
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error class name -> count (every attempt)
    failed: int = 0  # requests that ended in an error after their retries
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    unpriced: int = 0  # completed requests whose model has no known price
    started_at: str = field(default_factory=_now_iso)
    started: float = field(default_factory=time.monotonic, repr=False)
    session_usage: Usage = field(default_factory=Usage)  # usage of this process only
    # Monotonic times of the first request sent and the last answer received (this process):
    # the span in which the provider was kept busy, without start-up and the final export.
    first_sent: float | None = field(default=None, repr=False)
    last_answered: float | None = field(default=None, repr=False)

    @property
    def provider_span_s(self) -> float:
        """Seconds from the first request sent to the last answer received (0 before any)."""
        if self.first_sent is None or self.last_answered is None:
            return 0.0
        return max(0.0, self.last_answered - self.first_sent)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second generated in this session."""
        elapsed = self.elapsed_s
        return self.session_usage.completion_tokens / elapsed if elapsed > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        elapsed = self.elapsed_s
        return self.completed / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completed": self.completed,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "errors": dict(self.errors),
            "failed": self.failed,
            "usage": self.usage.to_dict(),
            "cost_usd": round(self.cost_usd, 6),
            "unpriced": self.unpriced,
            "started_at": self.started_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
        }

    @classmethod
    def resumed(cls, usage: Usage | None = None, cost_usd: float = 0.0) -> RunStats:
        """Fresh counters that carry an earlier session's usage and cost (for ``--budget``)."""
        return cls(usage=usage or Usage(), cost_usd=float(cost_usd or 0.0))


def cache_identity(provider: Provider) -> dict[str, Any]:
    """What identifies ``provider``'s answers in a cache key: ``identity()`` plus the default
    sampling parameters it applies to requests that leave them unset (they change answers too)."""
    identity = dict(public_identity(provider.identity()))
    defaults = getattr(provider, "sampling", None) or getattr(provider, "_sampling", None)
    to_dict = getattr(defaults, "to_dict", None)
    if callable(to_dict) and to_dict():
        identity["default_sampling"] = to_dict()
    return identity


class Dispatcher:
    """Sends requests for a run. ``await dispatcher.complete(request)`` from any number of tasks.

    - cache hit: returned at once, no provider call, no cost;
    - otherwise: budget check, a slot from the adaptive limiter, ``provider.complete``;
    - 429 (:class:`RateLimitError`): the limiter hears of it (it cuts the concurrency once 429s
      pile up), the request waits ``retry_after`` (or the backoff) and is retried; 5xx/timeouts (:class:`TransientProviderError`): backoff and
      retry; after ``retry.max_attempts`` tries the last error is raised;
    - other :class:`ProviderError`: raised at once (auth, quota and unknown model also stop every
      later request);
    - too many failures among the last ``error_window`` attempts (more than ``max_error_rate``):
      :class:`ErrorRateError`, and the run stops.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        cache: ResponseCache | None = None,
        concurrency: int = 16,
        rpm: float | None = None,
        tpm: float | None = None,
        retry: RetryPolicy | None = None,
        budget_usd: float | None = None,
        prices: PriceTable | None = None,
        stats: RunStats | None = None,
        max_error_rate: float = 0.5,
        error_window: int = 50,
        limiter: AdaptiveLimiter | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        self.provider = provider
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or AdaptiveLimiter(concurrency, rpm=rpm, tpm=tpm)
        self.track_tokens = self.limiter.tokens is not None
        self.prices = prices if prices is not None else PriceTable.load()
        self.stats = stats or RunStats()
        self.budget_usd = budget_usd
        self.max_error_rate = max_error_rate
        self.error_window = max(1, int(error_window))
        self._outcomes: deque[bool] = deque(maxlen=self.error_window)  # True = failed attempt
        self._failures_in_window = 0
        # A small run must be able to stop too: the window is judged from this many attempts on.
        self._min_judged = min(self.error_window, 10)
        self.last_error: ProviderError | None = None  # the latest failed attempt, for messages
        self._sleep = sleep
        self._identity = cache_identity(provider)
        self._reserved_usd = 0.0  # estimated cost of requests in flight
        # What the budget counted above the reported cost: a request is charged the larger of its
        # estimate and its reported usage, so an answer that under-reports cannot free budget.
        self._charged_above_cost_usd = 0.0
        # Dispatchers sharing this one's --budget (the judge's and the run's): their spend counts too.
        self.budget_peers: tuple[Dispatcher, ...] = ()
        self._largest_completion = 0
        self.stopped: FountainError | None = None
        self._price = self.prices.lookup(provider.name, getattr(provider, "model", None))
        self._price_by_model: dict[str, Any] = {}
        self._warned_unpriced = False
        if budget_usd is not None and self._price is None:
            raise FountainError(
                f"--budget needs a price for {provider.name} model {getattr(provider, 'model', None)!r}, "
                "and none is known",
                hint="add the model to a price table and pass it with --prices FILE "
                "(or FOUNTAIN_PRICES), or run without --budget",
            )

    @property
    def identity(self) -> dict[str, Any]:
        """The provider identity used in cache keys (never a secret)."""
        return dict(self._identity)

    def key(self, request: Request) -> str:
        return request_key(self._identity, request)

    def cached(self, request: Request) -> Completion | None:
        """The cached answer to ``request`` if there is one (no provider call, not counted)."""
        return self.cache.get(self.key(request)) if self.cache is not None else None

    async def complete(self, request: Request) -> Completion:
        """The provider's answer to ``request`` (from the cache when it has it)."""
        if self.stopped is not None:
            raise self.stopped
        key = None
        if self.cache is not None:
            key = request_key(self._identity, request)
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit
        return await self._send(request, key)

    # --- internals ----------------------------------------------------------------------------------

    def _reserve_budget(self, prompt_tokens: int, completion_tokens: int) -> float:
        if self.budget_usd is None or self._price is None:
            return 0.0
        estimate = self._price.cost(Usage(prompt_tokens, completion_tokens))
        spent = self.stats.cost_usd + self._charged_above_cost_usd
        for peer in self.budget_peers:
            spent += peer.stats.cost_usd + peer._charged_above_cost_usd + peer._reserved_usd
        if spent + self._reserved_usd + estimate > self.budget_usd:
            self.stopped = BudgetExceededError(
                f"stopped before exceeding the budget of ${self.budget_usd:.2f}: "
                f"${spent:.4f} spent so far, ${self._reserved_usd:.4f} in flight, and the next "
                f"request would cost up to ${estimate:.4f}",
                hint="everything done so far is saved; run the same command again with a higher "
                "--budget to continue (answers already received come from the cache and are "
                "not paid twice)",
            )
            raise self.stopped
        self._reserved_usd += estimate
        return estimate

    async def _send(self, request: Request, key: str | None) -> Completion:
        """Tries ``request`` until it succeeds, fails for good or the run stops; stores the answer."""
        # Estimates only where a token bucket or a budget needs them (the prompt's text is
        # otherwise never joined).
        prompt_tokens = completion_tokens = tokens = 0
        if self.track_tokens or self.budget_usd is not None:
            prompt_tokens = estimate_tokens(request.prompt_text())
            completion_tokens = request.sampling.max_tokens or self._largest_completion or DEFAULT_COMPLETION_ESTIMATE
            tokens = prompt_tokens + completion_tokens if self.track_tokens else 0
        limiter = self.limiter
        reserved = 0.0
        attempt = 0
        try:
            while True:
                attempt += 1
                permit = await limiter.acquire(tokens)
                if self.stopped is not None:  # another task stopped the run while we waited
                    limiter.release(permit, success=False)
                    raise self.stopped
                if attempt == 1 and self.budget_usd is not None:
                    # Reserved only once a slot is held, so queued requests do not eat the budget.
                    try:
                        reserved = self._reserve_budget(prompt_tokens, completion_tokens)
                    except BaseException:
                        limiter.release(permit, success=False)
                        raise
                stats = self.stats
                stats.requests += 1
                if stats.first_sent is None:
                    stats.first_sent = time.monotonic()
                try:
                    completion = await self.provider.complete(request)
                except BaseException as error:
                    failure, delay = self._failed_attempt(error, permit, attempt)  # or raises
                else:
                    stats.last_answered = time.monotonic()
                    # The slot is given back only once the answer is in the cache, so when every
                    # slot is waiting on the provider, every answer received so far is on disk.
                    try:
                        cost = self._account(completion)
                        if reserved > cost:
                            self._charged_above_cost_usd += reserved - cost
                        if key is not None:
                            assert self.cache is not None  # a key is made only with a cache
                            await self.cache.aput(key, request, completion, identity=self._identity)
                    finally:
                        used = completion.usage.total_tokens if tokens else None
                        limiter.release(permit, used_tokens=used or None)
                    self._record(failed=False)
                    return completion
                if attempt >= self.retry.max_attempts:
                    self.stats.failed += 1
                    raise failure
                self.stats.retries += 1
                await self._sleep(delay)
                if self.stopped is not None:
                    raise self.stopped
        finally:
            self._reserved_usd -= reserved

    def _failed_attempt(self, error: BaseException, permit: Any, attempt: int) -> tuple[ProviderError, float]:
        """Give back the slot of an attempt that raised ``error`` and count it. A retryable error
        (429, transient, timeout, connection) comes back with the delay before the next attempt;
        any other is raised (a fatal one stops the run)."""
        limiter, stats = self.limiter, self.stats
        if isinstance(error, RateLimitError):
            limiter.release(permit, rate_limited=True)
            stats.rate_limited += 1
            stats.errors[type(error).__name__] += 1
            return error, self.retry.delay(attempt, error.retry_after)
        limiter.release(permit, success=False)
        if isinstance(error, (TransientProviderError, asyncio.TimeoutError, ConnectionError)):
            failure = (
                error
                if isinstance(error, ProviderError)
                else TransientProviderError(f"{self.provider.name}: {type(error).__name__} {error}".rstrip())
            )
            stats.errors[type(failure).__name__] += 1
            self.last_error = failure
            self._record(failed=True)
            return failure, self.retry.delay(attempt)
        if isinstance(error, ProviderError):
            stats.errors[type(error).__name__] += 1
            stats.failed += 1
            self.last_error = error
            if isinstance(error, FATAL_ERRORS):
                self.stopped = error
            else:
                self._record(failed=True)
        raise error

    def _record(self, *, failed: bool) -> None:
        """Track the outcome of one attempt (429s excluded: they are flow control, not failure)."""
        window = self._outcomes
        if len(window) == window.maxlen and window[0]:
            self._failures_in_window -= 1
        window.append(failed)
        if failed:
            self._failures_in_window += 1
            # Judged from min(window, 10) attempts on: a couple of early failures do not stop a
            # run, and a small run against a dead endpoint still stops instead of retrying on.
            if (
                len(window) >= self._min_judged
                and self._failures_in_window / len(window) > self.max_error_rate
                and self.stopped is None
            ):
                last = self.last_error
                where = getattr(self.provider, "base_url", None)
                self.stopped = ErrorRateError(
                    f"stopped: {self._failures_in_window} of the last {len(window)} requests to "
                    f"{self.provider.name}{f' at {where}' if where else ''} failed (more than "
                    f"{self.max_error_rate:.0%})" + (f"; last error: {last.message}" if last else ""),
                    hint="check --base-url (or model.base_url) and that the server is up and "
                    "answering; everything done so far is saved: run the same command again "
                    "to resume (--max-error-rate changes the threshold)",
                )
                raise self.stopped

    def _account(self, completion: Completion) -> float:
        """Count ``completion`` in the stats; returns its cost (0.0 when unpriced)."""
        stats = self.stats
        stats.completed += 1
        usage = completion.usage
        stats.usage = stats.usage + usage
        stats.session_usage = stats.session_usage + usage
        if usage.completion_tokens > self._largest_completion:
            self._largest_completion = usage.completion_tokens
        price = self._price
        if completion.model and completion.model != getattr(self.provider, "model", None):
            # The answer names a dated snapshot or another model: price that one when known.
            if completion.model not in self._price_by_model:
                self._price_by_model[completion.model] = (
                    self.prices.lookup(self.provider.name, completion.model) or self._price
                )
            price = self._price_by_model[completion.model]
        if price is None:
            stats.unpriced += 1
            if not self._warned_unpriced:  # the table warns (once per model)
                self._warned_unpriced = True
                self.prices.cost(self.provider.name, getattr(self.provider, "model", None), usage)
            return 0.0
        cost = max(price.cost(usage), 0.0)  # token counts are sanitised (answers.py); never negative
        stats.cost_usd += cost
        return cost
