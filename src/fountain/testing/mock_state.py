"""The mock server's options (latency, faults, refusals), the requests it recorded and its counters: shared by the server loop and the tests that drive it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from typing import Any

FAULTS = ("429", "quota", "500", "timeout", "malformed", "401", "404", "400")
# What ``error_rate`` spreads evenly over: the transient faults a long run must survive.
TRANSIENT_FAULTS = ("429", "500", "timeout", "malformed")


@dataclass
class MockOptions:
    """Behaviour of the server; every field can be changed while it runs (``configure``)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # uniform in [-jitter, +jitter] around the latency
    error_rate: float = 0.0  # spread evenly over TRANSIENT_FAULTS
    fault_rates: dict[str, float] = field(default_factory=dict)  # e.g. {"429": 0.1, "500": 0.05}
    faults: list[str] = field(default_factory=list)  # scripted: the next requests get these, FIFO
    retry_after: str | None = "1"  # Retry-After header value sent with a 429 (None: no header)
    timeout_s: float = 30.0  # how long a "timeout" fault hangs before answering
    api_key: str | None = None  # when set, any other key (or none) gets 401
    models: list[str] | None = None  # when set, any other model gets 404
    reject_json_schema: bool = False  # OpenAI: answer 400 to response_format type json_schema
    # OpenAI: refuse these response_format forms with this status, in the words of the server
    # that does so: {"json_schema": 500} is llama-cpp-python's server (a pydantic error in a 500);
    # the keys are json_schema, json_object_schema (json_object with a "schema"), json_object.
    format_refusals: dict[str, int] = field(default_factory=dict)
    record: bool = True  # keep every request (headers and body); counts are kept regardless
    seed: int = 0  # seeds the fault and jitter draws
    # scripted raw answers, FIFO, served before anything else: (status, headers, body bytes).
    # For hardening tests and fuzzers: any bytes and headers a hostile or broken server could send.
    raw_answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    # fountain's judge (fountain.testing.mock_judge): pinned scores (criterion -> score, "*": every
    # criterion; default: hashed), and how many of the next judge requests get a prose answer.
    judge_scores: dict[str, Any] = field(default_factory=dict)
    judge_malformed: int = 0


@dataclass
class RecordedRequest:
    """One request as the server received it (authentication headers removed)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    hash: str
    api: str  # "openai" | "anthropic" | "gemini"
    has_key: bool = False  # whether the request carried a credential (its value is never kept)
    status: int = 0  # what the server answered (0 while in flight)
    received_at: float = 0.0  # time.time() when it arrived (rate measurements)


class MockState:
    """Options, recorded requests and counters; shared by the server loop and its users."""

    def __init__(self, **options: Any):
        self.options = MockOptions()
        self.requests: list[RecordedRequest] = []
        self.received = 0
        self.first_received_at: float | None = None  # wall clock of the first request (start-up benchmarks)
        self.completed: Counter[str] = Counter()  # request hash -> successful answers sent
        self.statuses: Counter[int] = Counter()
        self._scripted: deque[str] = deque()
        self._raw: deque[tuple[int, dict[str, str], bytes]] = deque()
        self._rng = random.Random(0)
        self.configure(**options)

    def configure(self, **options: Any) -> None:
        names = {f.name for f in fields(MockOptions)}
        unknown = set(options) - names
        if unknown:
            raise TypeError(f"unknown mock server option(s): {sorted(unknown)}")
        for name, value in options.items():
            setattr(self.options, name, value)
        bad = [f for f in list(self.options.fault_rates) + list(options.get("faults", ())) if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault(s) {bad}; known: {FAULTS}")
        if "faults" in options:
            self._scripted = deque(options["faults"])
        if "raw_answers" in options:
            self._raw = deque(options["raw_answers"])
        if "seed" in options:
            self._rng = random.Random(options["seed"])

    def reset(self) -> None:
        """Forget recorded requests and counters and restore the default options."""
        self.requests.clear()
        self.received = 0
        self.first_received_at = None
        self.completed.clear()
        self.statuses.clear()
        self._scripted.clear()
        self._raw.clear()
        self.options = MockOptions()
        self._rng = random.Random(0)
        batch = getattr(self, "batch", None)  # the batch APIs' jobs (fountain.testing.batch_mock)
        if batch is not None:
            batch.__init__()

    def next_raw(self) -> tuple[int, dict[str, str], bytes] | None:
        """The next scripted raw answer, if any."""
        return self._raw.popleft() if self._raw else None

    def next_fault(self) -> str | None:
        if self._scripted:
            return self._scripted.popleft()
        opts = self.options
        if opts.error_rate <= 0 and not opts.fault_rates:
            return None
        draw = self._rng.random()
        acc = 0.0
        for name in TRANSIENT_FAULTS:
            acc += opts.error_rate / len(TRANSIENT_FAULTS)
            if draw < acc:
                return name
        for name, rate in opts.fault_rates.items():
            acc += rate
            if draw < acc:
                return name
        return None

    def delay(self) -> float:
        opts = self.options
        if opts.jitter_ms:
            ms = opts.latency_ms + self._rng.uniform(-opts.jitter_ms, opts.jitter_ms)
        else:
            ms = opts.latency_ms
        return max(ms, 0.0) / 1000.0

    def duplicates(self) -> dict[str, int]:
        """Request hashes answered successfully more than once (a resumed run must have none)."""
        return {h: n for h, n in self.completed.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "first_received_at": self.first_received_at,
            "completed": sum(self.completed.values()),
            "distinct_completed": len(self.completed),
            "duplicates": len(self.duplicates()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


async def _sleep_until(deadline: float) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining > 0:
        await asyncio.sleep(remaining)
