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
