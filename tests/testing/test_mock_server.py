"""The benchmark's mock server behaves as its options say (the tests of retries rely on it)."""

from __future__ import annotations

import time

import aiohttp

BODY = {"model": "m", "messages": [{"role": "user", "content": "Write one."}]}


async def _post(url: str, timeout_s: float = 10.0) -> tuple[int, dict, float]:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url + "/chat/completions", json=BODY) as response,
    ):
        return response.status, await response.json(), time.perf_counter() - started


async def test_latency_is_never_shorter_than_configured(mock_server):
    mock_server.configure(latency_ms=300)
    status, answer, seconds = await _post(mock_server.openai_base_url)
    assert status == 200 and answer["choices"][0]["message"]["content"]
    assert seconds >= 0.3


async def test_a_fault_comes_after_the_latency(mock_server):
    mock_server.configure(latency_ms=200, faults=["500"])
    status, answer, seconds = await _post(mock_server.openai_base_url)
    assert status == 500 and seconds >= 0.2 and "error" in answer


async def test_a_timeout_fault_answers_a_patient_client_after_its_hang(mock_server):
    mock_server.configure(faults=["timeout"], timeout_s=0.3)
    status, answer, seconds = await _post(mock_server.openai_base_url)
    assert status == 200 and answer["choices"][0]["message"]["content"] and seconds >= 0.3
    assert sum(mock_server.state.completed.values()) == 1
