"""A fleet of OpenAI-compatible servers behind one provider (``--base-url`` given several times).

Requests are spread over the servers (vLLM, SGLang, llama.cpp server... serving the same model):
each goes to the healthy server with the most room, where room is what that server's own
:class:`~fountain.providers.throttle.AdaptiveLimiter` allows (a 429 from one server slows that one
only). Each server has its own :class:`~fountain.providers.openai.OpenAIProvider`, so its
structured-output level and pacing are its own too.

A circuit breaker per server: after ``failures_to_open`` transient failures in a row (timeouts,
5xx, refused connections) the server is taken out for a cooldown (5 s, doubling up to 5 min);
then one request probes it, and an answer puts it back. A request that fails on one server is
sent at once to another one that is in, so a dead server costs no failed task; only when every
server is out does the request fail (the dispatcher backs off and retries, and its error-rate stop
still ends a run whose whole fleet is down).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fountain.errors import RateLimitError, TransientProviderError
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.openai import DEFAULT_MODEL, OpenAIProvider
from fountain.providers.throttle import AdaptiveLimiter

FAILURES_TO_OPEN = 3
FIRST_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
DEFAULT_SERVER_CONCURRENCY = 16


class Member:
    """One server of the fleet: its provider, limiter and breaker state."""

    def __init__(self, provider: OpenAIProvider, concurrency: int, *, failures_to_open: int, first_cooldown_s: float):
        self.provider = provider
        self.limiter = AdaptiveLimiter(concurrency)
        self.failures_to_open = failures_to_open
        self.first_cooldown_s = first_cooldown_s
        self.failures = 0  # consecutive transient failures
        self.cooldown_s = first_cooldown_s
        self.open_until: float | None = None  # out of the fleet until then
        self.probing = False  # a request is testing an out server
        self.answered = 0
        self.failed = 0
        self.times_out = 0

    @property
    def url(self) -> str:
        return self.provider.base_url

    def usable(self, now: float) -> bool:
        if self.open_until is None:
            return True
        return now >= self.open_until and not self.probing

    def room(self) -> float:
        """Share of this server's slots that are free (higher: send here)."""
        limit = self.limiter.limit
        return (limit - self.limiter.active) / limit

    def on_success(self) -> None:
        self.answered += 1
        self.failures = 0
        self.probing = False
        self.open_until = None
        self.cooldown_s = self.first_cooldown_s

    def on_failure(self, now: float) -> None:
        self.failed += 1
        self.failures += 1
        if self.probing or self.failures >= self.failures_to_open:
            if self.probing:  # the probe failed: stay out longer
                self.cooldown_s = min(MAX_COOLDOWN_S, self.cooldown_s * 2)
            self.probing = False
            self.open_until = now + self.cooldown_s
            self.times_out += 1


class FleetProvider:
    """The ``openai`` provider over several base URLs."""

    name = "openai"

    def __init__(self, config: ProviderConfig, *, clock: Callable[[], float] = time.monotonic):
        urls = list(dict.fromkeys(config.base_urls or ((config.base_url,) if config.base_url else ())))
        if not urls:
            raise ValueError("a fleet needs at least one base URL")
        self.model = config.model or DEFAULT_MODEL
        per_server = int(config.extra.get("server_concurrency") or DEFAULT_SERVER_CONCURRENCY)
        failures = int(config.extra.get("failures_to_open") or FAILURES_TO_OPEN)
        cooldown = float(config.extra.get("first_cooldown_s") or FIRST_COOLDOWN_S)
        self.members = [
            Member(
                OpenAIProvider(replace(config, base_url=url, base_urls=())),
                per_server,
                failures_to_open=failures,
                first_cooldown_s=cooldown,
            )
            for url in urls
        ]
        self.sampling = self.members[0].provider.sampling
        self.base_url = f"a fleet of {len(urls)} servers ({', '.join(m.url for m in self.members)})"
        self._clock = clock
        self._turn = 0

    def __repr__(self) -> str:
        return f"FleetProvider(model={self.model!r}, servers={[m.url for m in self.members]!r})"

    def identity(self) -> dict[str, Any]:
        # The servers serve one model: an answer does not depend on which one gave it, and a run
        # resumes (and reuses its cache) after servers join or leave the fleet.
        return {"provider": self.name, "model": self.model, "base_url": "fleet"}

    @property
    def structured_output(self) -> str:
        return self.members[0].provider.structured_output

    def _pick(self, tried: set[int]) -> int | None:
        """The index of the server to send to: one whose cooldown is over (the probe), else the
        usable one with the most room (round robin among equals)."""
        now = self._clock()
        best: int | None = None
        best_room = -1.0
        n = len(self.members)
        for step in range(n):
            index = (self._turn + step) % n
            member = self.members[index]
            if index in tried or not member.usable(now):
                continue
            room = 2.0 if member.open_until is not None else member.room()
            if room > best_room:
                best, best_room = index, room
        self._turn = (self._turn + 1) % n
        return best

    async def complete(self, request: Request) -> Completion:
        tried: set[int] = set()
        last: TransientProviderError | None = None
        while True:
            index = self._pick(tried)
            if index is None:
                break
            tried.add(index)
            member = self.members[index]
            if member.open_until is not None:
                member.probing = True
            permit = await member.limiter.acquire()
            try:
                completion = await member.provider.complete(request)
            except RateLimitError:
                member.limiter.release(permit, rate_limited=True)
                member.probing = False
                raise
            except TransientProviderError as error:
                member.limiter.release(permit, success=False)
                member.on_failure(self._clock())
                last = error
                continue
            except BaseException:
                member.limiter.release(permit, success=False)
                member.probing = False
                raise
            member.limiter.release(permit)
            member.on_success()
            return completion
        if last is not None:
            raise last
        soonest = min(m.open_until or 0.0 for m in self.members) - self._clock()
        raise TransientProviderError(
            f"openai: every server of the fleet is out after failures (the first is back in {max(soonest, 0):.0f}s)",
            hint="temporary; the engine retries it with backoff. Check that the servers are up",
        )

    def servers(self) -> list[dict[str, Any]]:
        """Per-server counters (for the manifest, tests and benchmarks)."""
        now = self._clock()
        return [
            {
                "base_url": m.url,
                "answered": m.answered,
                "failed": m.failed,
                "times_out": m.times_out,
                "out": m.open_until is not None and now < m.open_until,
            }
            for m in self.members
        ]

    async def aclose(self) -> None:
        for member in self.members:
            await member.provider.aclose()
