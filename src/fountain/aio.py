"""The event loop fountain runs on.

A run is one event-loop thread driving hundreds of concurrent HTTP requests, so the loop's own
cost per request matters: uvloop (libuv) spends about a third less CPU per request than the
standard loop (measured with ``benchmarks/throughput.py``), which on a small machine is the
difference between saturating a provider and not. uvloop is used when it is installed (it is a
dependency everywhere but Windows, where it does not exist); ``FOUNTAIN_EVENT_LOOP=asyncio``
picks the standard loop, e.g. to rule the loop out when debugging.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

ENV_VAR = "FOUNTAIN_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for uvloop's loop, or None for asyncio's default (not installed, or opted out)."""
    if os.environ.get(ENV_VAR, "").strip().lower() in ("asyncio", "default", "standard"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: what :func:`run` will use (for logs and benchmarks)."""
    return "uvloop" if loop_factory() is not None else "asyncio"


def run(main: Awaitable[T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available (see the module docstring)."""
    factory = loop_factory()
    if factory is None:
        return asyncio.run(main)  # type: ignore[arg-type]
    runner_class: Any = getattr(asyncio, "Runner", None)
    if runner_class is None:  # Python 3.10 has no Runner(loop_factory=...): the standard loop
        return asyncio.run(main)  # type: ignore[arg-type]
    with runner_class(loop_factory=factory) as runner:
        return runner.run(main)


async def in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a daemon thread, awaited without blocking the event loop.

    For CPU-bound steps between requests (the embedder's load and batches in dedup): the loop
    stays free to take Ctrl-C, and a cancelled caller returns at once. The thread is a daemon, so
    an interrupted run does not wait for the step to finish before the process exits (unlike
    ``asyncio.to_thread``, whose pool threads are joined at exit).
    """
    import threading

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = function(*args), None
        except BaseException as caught:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, caught
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits for this any more
            pass

    threading.Thread(target=work, name="fountain-step", daemon=True).start()
    return await future
