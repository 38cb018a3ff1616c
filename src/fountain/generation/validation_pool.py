"""Where a json-mode answer is validated: in the event loop, or in worker processes.

Validation (JSON, shape, rules, quality gates) is the largest share of the event loop's CPU time
per request (about half, ``benchmarks/throughput.py``'s CPU budget). One event-loop thread
therefore caps a run's request rate however many cores the machine has. A
:class:`ValidationPool` moves that work into worker processes: the answers that arrive in one
event-loop tick go to them as one batch per process (a hop costs about 0.2 ms, a batch shares
it), and each caller gets its verdict back. The verdicts are the ones the event loop would give
(the same function runs there); a pool that breaks (a process killed) falls back to validating
in the event loop, so no answer is lost or judged twice.

It pays only where cores are spare: :func:`auto_processes` turns it on for remote providers on
machines with at least :data:`MIN_CPUS` CPUs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.validate import validate_completion
from fountain.types import Turn

MIN_CPUS = 4  # below this the pool's processes compete with the event loop and the server
MAX_AUTO_PROCESSES = 4
REMOTE_PROVIDERS = frozenset({"openai", "anthropic", "gemini"})

Item = tuple[Any, str, tuple[Turn, ...], tuple[Turn, ...], "str | None"]


def validate_answer(
    rules: Rules, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
) -> Accepted | Rejected:
    """One answer's verdict; never raises on model output."""
    try:
        return validate_completion(
            payload, spec_or_rules=rules, kind=kind, prefix=prefix, parent=parent, finish_reason=finish_reason
        )
    except Exception as error:  # noqa: BLE001 - a model's answer must never crash the run
        return Rejected("schema", f"the answer could not be validated: {type(error).__name__}: {error}")


class InlineValidator:
    """Validation in the event loop (the default)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    async def __call__(
        self, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
    ) -> Accepted | Rejected:
        return validate_answer(self.rules, payload, kind, prefix, parent, finish_reason)

    def close(self) -> None:
        """Nothing to release."""


# --- in a pool process ------------------------------------------------------------------------------

_RULES: Rules | None = None


def _init(rules: Rules) -> None:
    import signal

    global _RULES
    _RULES = rules
    # Ctrl-C reaches the whole process group: the run stops its pool itself (no child traceback)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _validate_batch(items: list[Item]) -> list[Accepted | Rejected]:
    assert _RULES is not None, "the pool process was not initialised"
    return [validate_answer(_RULES, *item) for item in items]


def _ready() -> bool:
    return _RULES is not None


# --- in the run's process ----------------------------------------------------------------------------


class ValidationPool(InlineValidator):
    """Validation in ``processes`` worker processes, batched per event-loop tick."""

    def __init__(self, rules: Rules, processes: int) -> None:
        import multiprocessing

        super().__init__(rules)
        self.processes = max(1, processes)
        # spawn, not fork: the run's process has threads (journal sync, cache checkpoints, HTTP)
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(rules,)
        )
        self._waiting: list[tuple[Item, asyncio.Future[Accepted | Rejected]]] = []
        self.fallbacks = 0  # answers validated in the event loop because the pool broke

    def start(self) -> None:
        """Start the processes now (in the background) rather than at the first answer."""
        if self._pool is not None:
            for _ in range(self.processes):
                self._pool.submit(_ready)

    async def __call__(
        self, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
    ) -> Accepted | Rejected:
        if self._pool is None:
            return validate_answer(self.rules, payload, kind, prefix, parent, finish_reason)
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[Accepted | Rejected] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._send)
        self._waiting.append(((payload, kind, tuple(prefix), tuple(parent), finish_reason), verdict))
        return await verdict

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, []
        size = -(-len(waiting) // self.processes)
        for start in range(0, len(waiting), size):
            chunk = waiting[start : start + size]
            try:
                assert self._pool is not None
                future = asyncio.wrap_future(self._pool.submit(_validate_batch, [item for item, _ in chunk]))
            except Exception:  # noqa: BLE001 - a broken or closed pool: validate here
                self._resolve(chunk, None)
                continue
            future.add_done_callback(partial(self._resolve, chunk))

    def _resolve(self, chunk: list[tuple[Item, asyncio.Future[Accepted | Rejected]]], future: Any) -> None:
        results: list[Accepted | Rejected] | None = None
        if future is not None and not future.cancelled() and future.exception() is None:
            results = future.result()
        if results is None or len(results) != len(chunk):
            self.fallbacks += len(chunk)
            results = [validate_answer(self.rules, *item) for item, _ in chunk]
        for (_, verdict), result in zip(chunk, results, strict=True):
            if not verdict.done():
                verdict.set_result(result)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def auto_processes(requested: int | None, *, provider: str, mode: str, cpus: int | None = None) -> int:
    """Pool processes for a run: ``requested`` when given (0: none), else a few where the machine
    has cores to spare and the answers come from a remote API in json mode."""
    if requested is not None:
        return max(0, requested)
    cpus = (
        cpus
        if cpus is not None
        else len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )
    if mode != "json" or provider not in REMOTE_PROVIDERS or not cpus or cpus < MIN_CPUS:
        return 0
    return min(MAX_AUTO_PROCESSES, cpus // MIN_CPUS)


def make_validator(rules: Rules, requested: int | None, *, provider: str, mode: str) -> InlineValidator:
    """An :class:`InlineValidator`, or a started :class:`ValidationPool` when
    :func:`auto_processes` gives any processes."""
    processes = auto_processes(requested, provider=provider, mode=mode)
    if processes <= 0:
        return InlineValidator(rules)
    pool = ValidationPool(rules, processes)
    pool.start()
    return pool
