"""fountain.aio: runs on uvloop when installed, on asyncio's loop when asked to."""

from __future__ import annotations

import asyncio

import pytest

from fountain import aio


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_when_installed(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv(aio.ENV_VAR, raising=False)
    assert aio.loop_name() == "uvloop"
    if not hasattr(asyncio, "Runner"):
        pytest.skip("Python 3.10 runs the standard loop")
    assert aio.run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_on_request(monkeypatch):
    monkeypatch.setenv(aio.ENV_VAR, "asyncio")
    assert aio.loop_name() == "asyncio"
    assert aio.run(_loop_module()).startswith("asyncio")


def test_exceptions_and_results_come_through(monkeypatch):
    monkeypatch.delenv(aio.ENV_VAR, raising=False)

    async def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        aio.run(fails())
    assert aio.run(asyncio.sleep(0, result=42)) == 42


def test_a_step_in_a_daemon_thread_returns_its_result_and_raises_its_error():
    import asyncio

    import pytest

    from fountain.aio import in_daemon_thread

    async def main():
        assert await in_daemon_thread(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            await in_daemon_thread(lambda: 1 / 0)

    asyncio.run(main())


def test_a_cancelled_caller_does_not_wait_for_a_long_step():
    import asyncio
    import threading
    import time

    from fountain.aio import in_daemon_thread

    release = threading.Event()

    async def main():
        task = asyncio.ensure_future(in_daemon_thread(release.wait, 30))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return time.monotonic() - started

    try:
        assert asyncio.run(main()) < 0.5  # Ctrl-C during dedup: the run stops at once
    finally:
        release.set()
