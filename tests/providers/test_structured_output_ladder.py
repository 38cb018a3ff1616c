"""The structured-output ladder, forcing and pacing of the openai adapter, against the loopback mock
speaking as servers that refuse a response_format (llama-cpp-python's 500, a 400, a 422)."""

from __future__ import annotations

import asyncio
import time

import pytest

from fountain.errors import BadRequestError, TransientProviderError
from fountain.providers import create_provider, resolve_provider_config
from fountain.providers.base import Message, ProviderConfig, Request
from fountain.providers.dispatch import Dispatcher
from fountain.providers.openai import refuses_format
from fountain.providers.pacing import ServerBusyError, ServerPacing
from fountain.providers.throttle import RetryPolicy

SCHEMA = {
    "title": "conversation",
    "type": "object",
    "required": ["conversation"],
    "properties": {
        "conversation": {
            "type": "object",
            "required": ["user", "assistant"],
            "properties": {"user": {"type": "string"}, "assistant": {"type": "string"}},
        }
    },
}


def _request(index: int = 0) -> Request:
    return Request(messages=(Message("user", "Write one."),), schema=SCHEMA, seed=1, sample_index=index)


def _kinds(mock_server) -> list[str]:
    out = []
    for recorded in mock_server.requests:
        response_format = recorded.body.get("response_format")
        if response_format is None:
            out.append("none")
        elif response_format["type"] == "json_object" and "schema" in response_format:
            out.append("json_object_schema")
        else:
            out.append(response_format["type"])
    return out


def _provider(mock_server, **extra):
    return create_provider(
        ProviderConfig(
            provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=5.0, extra=dict(extra)
        )
    )


async def test_llama_cpp_servers_500_on_json_schema_steps_down_to_json_object_with_the_schema(mock_server):
    mock_server.configure(format_refusals={"json_schema": 500})
    provider = _provider(mock_server)
    first = await provider.complete(_request(0))
    second = await provider.complete(_request(1))
    await provider.aclose()
    # strict and plain json_schema refused with a 500, then json_object carrying the schema
    # (what llama-cpp-python constrains its grammar with), remembered for the next request
    assert _kinds(mock_server) == ["json_schema", "json_schema", "json_object_schema", "json_object_schema"]
    assert mock_server.requests[2].body["response_format"]["schema"] == SCHEMA
    assert provider.structured_output == "json_object_schema"
    assert first.data is not None and second.data is not None


@pytest.mark.parametrize("status", [400, 422])
async def test_refusal_as_400_or_422_steps_down_the_same_way(mock_server, status):
    mock_server.configure(format_refusals={"json_schema": status, "json_object_schema": status})
    provider = _provider(mock_server)
    completion = await provider.complete(_request())
    await provider.aclose()
    assert _kinds(mock_server) == ["json_schema", "json_schema", "json_object_schema", "json_object"]
    assert provider.structured_output == "json_object" and completion.data is not None


async def test_a_server_refusing_every_form_is_asked_without_one(mock_server):
    mock_server.configure(format_refusals={"json_schema": 500, "json_object_schema": 500, "json_object": 500})
    provider = _provider(mock_server)
    await provider.complete(_request())
    await provider.aclose()
    assert _kinds(mock_server)[-1] == "none" and provider.structured_output == "none"


async def test_a_plain_500_is_not_taken_for_a_refusal(mock_server):
    mock_server.configure(faults=["500"])
    provider = _provider(mock_server)
    with pytest.raises(TransientProviderError):
        await provider.complete(_request())
    await provider.aclose()
    assert _kinds(mock_server) == ["json_schema"] and provider.structured_output == "json_schema_strict"


async def test_forced_json_object_is_sent_from_the_first_request(mock_server):
    provider = _provider(mock_server, structured_output="json_object")
    await provider.complete(_request())
    await provider.aclose()
    assert _kinds(mock_server) == ["json_object_schema"]


async def test_forced_form_refused_fails_with_a_hint_instead_of_stepping_down(mock_server):
    mock_server.configure(format_refusals={"json_schema": 500})
    provider = _provider(mock_server, structured_output="json_schema")
    with pytest.raises(BadRequestError, match="refused response_format") as info:
        await provider.complete(_request())
    await provider.aclose()
    assert "--structured-output" in (info.value.hint or "")
    assert _kinds(mock_server) == ["json_schema", "json_schema"]


async def test_refusal_does_not_reach_the_dispatchers_error_rate(mock_server):
    # Before the ladder knew 500s, every request was retried until the error-rate stop.
    mock_server.configure(format_refusals={"json_schema": 500})
    dispatcher = Dispatcher(_provider(mock_server), concurrency=4, retry=RetryPolicy(max_attempts=2))
    answers = await asyncio.gather(*(dispatcher.complete(_request(i)) for i in range(12)))
    await dispatcher.provider.aclose()
    assert all(a.data is not None for a in answers)
    assert dispatcher.stats.failed == 0 and dispatcher.stopped is None


def test_refusal_recognition_by_status_and_message():
    pydantic = "1 validation error: {'loc': ('body', 'response_format', 'type'), 'input': 'json_schema'}"
    assert refuses_format(500, pydantic)
    assert refuses_format(400, "Invalid schema for response_format 'x'")
    assert refuses_format(422, "strict mode is not supported")
    assert not refuses_format(500, "CUDA out of memory")
    assert not refuses_format(429, "response_format rate limited")
    assert not refuses_format(400, "max_tokens is too large")


def test_unknown_forced_form_is_a_user_error():
    with pytest.raises(BadRequestError, match="unknown structured_output"):
        create_provider(
            ProviderConfig(provider="openai", base_url="http://127.0.0.1:9/v1", extra={"structured_output": "yaml"})
        )


def test_timeout_and_structured_output_flags_override_the_spec():
    from fountain.spec.model import ModelSettings

    spec_model = ModelSettings(provider="openai", timeout_s=30.0, structured_output="none")
    assert resolve_provider_config(spec_model, env={}).timeout_s == 30.0
    assert resolve_provider_config(spec_model, env={}).extra["structured_output"] == "none"
    config = resolve_provider_config(spec_model, timeout_s=600, structured_output="json_object", env={})
    assert config.timeout_s == 600.0 and config.extra["structured_output"] == "json_object"


# --- pacing of servers that queue --------------------------------------------------------------


async def test_timeout_on_a_queueing_server_halves_in_flight_and_doubles_the_timeout(mock_server):
    # After a first answer, four sent at once to a server that queues them: all four time out
    # together, which halves the requests in flight once (not four times) and doubles the
    # timeout once. The server is slow, not dead: flow control (as a 429), not a failure.
    provider = create_provider(
        ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=0.5)
    )
    await provider.complete(_request(99))
    assert provider.pacing.cap is None  # the first answer opened the server up
    mock_server.configure(latency_ms=0, faults=["timeout"] * 4, timeout_s=2.0)
    results = await asyncio.gather(*(provider.complete(_request(i)) for i in range(4)), return_exceptions=True)
    await provider.aclose()
    slow = [r for r in results if isinstance(r, ServerBusyError)]  # a RateLimitError: flow control
    assert len(slow) == 4 and "slowing down" in slow[0].message
    assert provider.pacing.cap == 2 and provider.pacing.timeout_s == 1.0 and provider.pacing.timeouts == 4


async def test_first_request_alone_with_the_longest_timeout(mock_server):
    # Before any answer: one request at a time, and a slow first answer (longer than the
    # configured timeout, shorter than its ceiling) is not a failure.
    mock_server.configure(latency_ms=800)
    provider = create_provider(
        ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=0.5)
    )
    assert provider.pacing.cap == 1 and provider.pacing.timeout_s == 4.0
    answers = await asyncio.gather(*(provider.complete(_request(i)) for i in range(3)))
    await provider.aclose()
    assert all(a.data is not None for a in answers)
    assert provider.pacing.timeouts == 0 and provider.pacing.cap is None
    assert provider.pacing.timeout_s == pytest.approx(4 * provider.pacing.slowest_s, rel=0.01)


async def test_a_server_that_never_answers_is_a_failure_at_the_ceiling(mock_server):
    mock_server.configure(faults=["timeout"], timeout_s=3.0)
    provider = create_provider(
        ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=0.2)
    )
    with pytest.raises(TransientProviderError, match="within 1.6s"):
        await provider.complete(_request(0))  # the first request waits the ceiling (8 x 0.2 s)
    await provider.aclose()


async def test_slow_first_answer_raises_the_timeout_instead_of_failing_the_next():
    pacing = ServerPacing(10.0)
    assert pacing.timeout_s == 80.0  # before any answer: the ceiling
    pacing.answered(time.monotonic() - 6.0)  # the first answer took 6 s (a model loading)
    assert pacing.timeout_s == pytest.approx(24.0, abs=0.1)  # four times the slowest answer
    pacing.answered(time.monotonic() - 60.0)
    assert pacing.timeout_s == 80.0  # at most eight times the configured timeout


async def test_cap_holds_requests_back_until_one_finishes():
    pacing = ServerPacing(10.0)
    pacing.cap, pacing._first_cap = 1, False
    order = []

    async def one(name: str, hold: float) -> None:
        async with pacing.slot():
            order.append(f"{name} in")
            assert pacing.in_flight <= 1
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.gather(one("a", 0.05), one("b", 0.0))
    assert order == ["a in", "a out", "b in", "b out"]


async def test_the_openai_api_itself_is_not_paced(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    provider = create_provider(ProviderConfig(provider="openai", timeout_s=7.0))
    assert not provider.pacing.adaptive and provider.pacing.timeout_s == 7.0
    await provider.aclose()
