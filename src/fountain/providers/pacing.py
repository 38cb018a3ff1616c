"""Pacing for self-hosted servers that queue: how long to wait for an answer, how many to send.

``python -m llama_cpp.server`` (and many single-GPU servers) answer one request at a time and queue
the rest. A client that sends several at once and times each out after a fixed delay sees the
queued ones "fail" although the server is busy with them, and sends them again: the queue only
grows. :class:`ServerPacing` keeps, per server:

- until the first answer: one request at a time, with the longest timeout (the ceiling): a slow
  first answer (a model still loading, a long prompt on a CPU) is not a failure, and nothing
  queues behind it to time out in the server's queue;
- then a timeout that follows the answers: at least the configured one, and four times the
  slowest answer seen so far, at most :data:`CEILING_FACTOR` times the configured one;
- after a timeout, a cap on the requests in flight: half of what was in flight (at least one),
  and a doubled timeout, so a retried request waits here, not in the server's queue (once per
  round: the requests that were in flight with it do not cut again).

Nothing of this applies to the OpenAI API itself (it does not queue; the caller skips pacing).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from fountain.errors import RateLimitError

# The longest timeout pacing may reach, as a multiple of the configured one.
CEILING_FACTOR = 8.0
# A timeout this many times the slowest answer seen is still judged a server that is stuck.
LATENCY_FACTOR = 4.0


class ServerBusyError(RateLimitError):
    """No answer in time from a server that answers, slowly: flow control like a 429 (the
    dispatcher retries it without counting it towards the error-rate stop), not a failure."""


class ServerPacing:
    """Adaptive timeout and in-flight cap for one server (one event loop)."""

    def __init__(self, timeout_s: float, *, adaptive: bool = True):
        self.base_timeout_s = float(timeout_s)
        self.ceiling_s = self.base_timeout_s * CEILING_FACTOR if adaptive else self.base_timeout_s
        self.adaptive = adaptive
        self._timeout_s = self.base_timeout_s
        self.slowest_s = 0.0
        self.answers = 0
        # None: as many in flight as the dispatcher sends; a paced server starts at one.
        self.cap: int | None = 1 if adaptive else None
        self._first_cap = self.cap is not None
        self.in_flight = 0
        self.timeouts = 0
        self._adjusted_at = float("-inf")  # when the cap and timeout last changed
        self._changed: asyncio.Condition | None = None
        self._waiting = 0  # tasks waiting for a place: a place given back wakes them only then

    @property
    def timeout_s(self) -> float:
        """The timeout for the next request."""
        if not self.adaptive:
            return self.base_timeout_s
        if not self.answers:
            return self.ceiling_s
        return min(self.ceiling_s, max(self._timeout_s, LATENCY_FACTOR * self.slowest_s))

    @property
    def can_wait_longer(self) -> bool:
        """Whether a timeout now is the server being slow (pacing still adapts) rather than a
        server that does not answer (the timeout is at its ceiling)."""
        return self.adaptive and self.timeout_s < self.ceiling_s

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def slot(self) -> _PacingSlot:
        """``async with pacing.slot() as timeout_s:`` holds one in-flight place (waiting while
        the cap is reached) and gives the timeout for the request sent in it."""
        return _PacingSlot(self)

    def answered(self, started: float) -> None:
        """An answer arrived for a request sent at ``started`` (``time.monotonic()``)."""
        self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        self.answers += 1
        if self._first_cap:  # the first answer is in: open up (unless a timeout capped since);
            self._first_cap = False  # the waiters hear of it when this slot is given back
            self.cap = None

    def timed_out(self, started: float) -> None:
        """A request sent at ``started`` got no answer in time: the server queues; send fewer,
        wait longer. Requests sent before the last change do not change it again (a batch that
        times out together halves the cap once)."""
        self.timeouts += 1
        if not self.adaptive or started < self._adjusted_at:
            return
        self._adjusted_at = time.monotonic()
        self._first_cap = False
        self.cap = max(1, min(self.cap or self.in_flight, self.in_flight) // 2)
        self._timeout_s = min(self.ceiling_s, self._timeout_s * 2)

    def describe(self) -> str:
        cap = "no cap" if self.cap is None else f"at most {self.cap} in flight"
        return f"timeout now {self.timeout_s:g}s, {cap}"


class _PacingSlot:
    """One in-flight place of a :class:`ServerPacing` (a class, not a generator-based context
    manager: it is entered once per request)."""

    __slots__ = ("_pacing",)

    def __init__(self, pacing: ServerPacing):
        self._pacing = pacing

    async def __aenter__(self) -> float:
        pacing = self._pacing
        if pacing.cap is not None:
            changed = pacing._condition()
            pacing._waiting += 1
            try:
                async with changed:
                    await changed.wait_for(lambda: pacing.cap is None or pacing.in_flight < pacing.cap)
            finally:
                pacing._waiting -= 1
        pacing.in_flight += 1
        return pacing.timeout_s

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pacing = self._pacing
        pacing.in_flight -= 1
        if pacing._waiting and pacing._changed is not None:
            async with pacing._changed:
                pacing._changed.notify_all()
