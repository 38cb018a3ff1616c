"""Where a json-mode answer is validated: in the event loop, or in worker processes.

Validation (JSON, shape, rules, quality gates) is the largest share of the event loop's CPU time
per request (about half, ``benchmarks/throughput.py``'s CPU budget), and one event-loop thread
caps a run's request rate however many cores the machine has. A :class:`ValidationPool` moves
that work into worker processes (:mod:`fountain.generation.validation_worker`, each fed through
a pipe): answers wait in one list, and a free process takes them all as one batch, so the
hand-off is shared by every answer that arrived meanwhile. Each caller gets the
verdict the event loop would have given (the same function runs there). A process that fails
(killed, never started) turns the pool into in-event-loop validation: no answer is lost or
judged twice.

It pays where the event loop is the bottleneck and another core has time: :func:`auto_processes`
turns it on for remote APIs in json mode on machines with at least :data:`MIN_CPUS` CPUs (on a
2-core machine that also ran the mock server, one process took the whole run from 48% to 56-57% of
a plain aiohttp loop, ``benchmarks/throughput.py``). Local and fake models answer slower than they
are validated, and turns mode validates utterances one by one: those validate in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.validation_worker import HEADER, READY, frame, validate_answer
from fountain.types import Turn

MIN_CPUS = 2  # on one CPU a process could only take time from the event loop
CPUS_PER_PROCESS = 4  # beyond the first process (2 CPUs: 1; 8: 2; 16 and more: 4)
MAX_AUTO_PROCESSES = 4
MAX_BATCH = 256  # answers sent to a process at once
START_TIMEOUT_S = 60.0  # a process not ready by then: validation stays in the event loop
REMOTE_PROVIDERS = frozenset({"openai", "anthropic", "gemini"})

Verdict = Accepted | Rejected
Item = tuple[Any, str, tuple[Turn, ...], tuple[Turn, ...], "str | None"]
Waiting = tuple[Item, "asyncio.Future[Verdict]"]

__all__ = ["InlineValidator", "ValidationPool", "auto_processes", "make_validator", "validate_answer"]


class InlineValidator:
    """Validation in the event loop (the default)."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    async def __call__(
        self, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
    ) -> Verdict:
        return validate_answer(self.rules, payload, kind, prefix, parent, finish_reason)

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to wait for."""


class ValidationPool(InlineValidator):
    """Validation in ``processes`` worker processes, each taking a batch of the waiting answers."""

    def __init__(self, rules: Rules, processes: int) -> None:
        super().__init__(rules)
        self.processes = max(1, processes)
        self._waiting: list[Waiting] = []
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._children: list[asyncio.subprocess.Process] = []
        self._working = True  # False once a process failed or the pool closed: the event loop validates
        self.ready = 0  # processes started and ready; until one is, the event loop validates
        self.fallbacks = 0  # answers validated in the event loop because a process failed
        self.validated = 0  # answers validated in the processes

    def start(self) -> None:
        """Start the processes (in the background, from within the running event loop)."""
        if self._tasks or not self._working:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop yet: started by the first answer
            return
        self._wake = asyncio.Event()
        rules = frame(self.rules)
        self._tasks = [loop.create_task(self._serve(rules)) for _ in range(self.processes)]

    async def aclose(self, timeout: float = 5.0) -> None:
        """:meth:`close`, then wait for the processes to end (killed after ``timeout`` seconds)."""
        self.close()
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), timeout)
            except (asyncio.TimeoutError, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    child.kill()

    async def __call__(
        self, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
    ) -> Verdict:
        self.start()
        if not self._working or not self.ready:
            return validate_answer(self.rules, payload, kind, prefix, parent, finish_reason)
        assert self._wake is not None
        verdict: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting.append(((payload, kind, tuple(prefix), tuple(parent), finish_reason), verdict))
        self._wake.set()
        return await verdict

    async def _serve(self, rules: bytes) -> None:
        """One process: started, given the rules, then fed batches until the pool closes."""
        assert self._wake is not None
        chunk: list[Waiting] = []
        try:
            child = await _spawn()
            self._children.append(child)
            assert child.stdin is not None and child.stdout is not None
            await asyncio.wait_for(child.stdout.readuntil(READY), START_TIMEOUT_S)
            child.stdin.write(rules)
            self.ready += 1
            while True:
                while not self._waiting:
                    self._wake.clear()
                    await self._wake.wait()
                chunk = self._take()
                child.stdin.write(frame([item for item, _ in chunk]))
                await child.stdin.drain()
                (size,) = HEADER.unpack(await child.stdout.readexactly(HEADER.size))
                results = pickle.loads(await child.stdout.readexactly(size))
                self.validated += len(results)
                for (_, verdict), result in zip(chunk, results, strict=True):
                    if not verdict.done():
                        verdict.set_result(result)
                chunk = []
        except asyncio.CancelledError:
            self._settle(chunk)
            raise
        except Exception:  # noqa: BLE001 - a failed process: the event loop validates from now on
            self._working = False
            self._settle(chunk)
            self._settle(self._take(everything=True))

    def _take(self, *, everything: bool = False) -> list[Waiting]:
        """What a free process takes: every waiting answer, up to :data:`MAX_BATCH` (a second
        process gets work while the first is busy, and batches stay as large as the load allows)."""
        share = len(self._waiting) if everything else MAX_BATCH
        taken, self._waiting = self._waiting[:share], self._waiting[share:]
        return taken

    def _settle(self, chunk: list[Waiting]) -> None:
        for item, verdict in chunk:
            if not verdict.done():
                self.fallbacks += 1
                verdict.set_result(validate_answer(self.rules, *item))

    def close(self) -> None:
        """Stop the processes (each ends at the end of its input) and validate what still waits."""
        self._working = False
        for task in self._tasks:
            task.cancel()
        for child in self._children:
            if child.returncode is None and child.stdin is not None:
                with contextlib.suppress(Exception):
                    child.stdin.close()
        self._settle(self._take(everything=True))


async def _spawn() -> asyncio.subprocess.Process:
    # The child imports the same fountain as this process, wherever it was imported from.
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fountain.generation.validation_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


def auto_processes(requested: int | None, *, provider: str, mode: str, cpus: int | None = None) -> int:
    """Pool processes for a run: ``requested`` when given (0: none), else a few where the machine
    has cores to spare and the answers come from a remote API in json mode."""
    if requested is not None:
        return max(0, requested)
    if cpus is None:
        from fountain.providers.local import available_cores

        cpus = available_cores()
    if mode != "json" or provider not in REMOTE_PROVIDERS or cpus < MIN_CPUS:
        return 0
    return min(MAX_AUTO_PROCESSES, max(1, cpus // CPUS_PER_PROCESS))


def make_validator(rules: Rules, requested: int | None, *, provider: str, mode: str) -> InlineValidator:
    """An :class:`InlineValidator`, or a started :class:`ValidationPool` when
    :func:`auto_processes` gives any processes."""
    processes = auto_processes(requested, provider=provider, mode=mode)
    if processes <= 0:
        return InlineValidator(rules)
    pool = ValidationPool(rules, processes)
    pool.start()
    return pool
