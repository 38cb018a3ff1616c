"""The anthropic adapter (real ``anthropic`` SDK) against the loopback mock server."""

from __future__ import annotations

import json
import logging
import sys

import jsonschema
import pytest

pytest.importorskip("anthropic")  # the optional extra; CI installs it with fountain[dev]

from fountain.errors import (  # noqa: E402
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    MissingDependencyError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    TransientProviderError,
)
from fountain.providers import create_provider  # noqa: E402
from fountain.providers.base import ProviderConfig, Request, Sampling  # noqa: E402
from provider_helpers import conversation_schema, make_request, provider_maker  # noqa: E402

KEY = "sk-ant-test-0a1b2c3d4e5f-secret"
SCHEMA = conversation_schema()


def _request(**overrides) -> Request:
    return make_request(**{"schema": SCHEMA, **overrides})


@pytest.fixture
def make(mock_server, monkeypatch):
    env = {"ANTHROPIC_API_KEY": KEY}
    return provider_maker(monkeypatch, "anthropic", env=env, model="claude-test", base_url=mock_server.url)


async def test_schema_becomes_a_forced_tool_and_answer_is_parsed(mock_server, make):
    mock_server.configure(api_key=KEY, models=["claude-test"])
    provider = make(sampling=Sampling(temperature=0.3))
    completion = await provider.complete(_request())
    await provider.aclose()

    (recorded,) = mock_server.requests
    body = recorded.body
    assert recorded.path == "/v1/messages" and recorded.has_key
    assert body["model"] == "claude-test"
    assert body["system"] == "You write dialogues."
    assert body["messages"] == [{"role": "user", "content": "Write one."}]
    assert body["tools"] == [
        {"name": "record_conversation", "description": body["tools"][0]["description"], "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "record_conversation"}
    assert body["max_tokens"] == 4096 and body["temperature"] == 0.3

    jsonschema.validate(completion.data, SCHEMA)
    assert json.loads(completion.text) == completion.data
    assert completion.finish_reason == "tool_use"
    assert completion.model == "claude-test"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


async def test_without_schema_the_text_is_returned(mock_server, make):
    provider = make()
    completion = await provider.complete(_request(schema=None))
    await provider.aclose()
    assert "tools" not in mock_server.requests[0].body
    assert completion.data is None and completion.finish_reason == "end_turn"
    assert "conversations" in json.loads(completion.text)


async def test_wrong_key_gives_clear_error(mock_server, make):
    mock_server.configure(api_key="sk-ant-the-right-one")
    provider = make()
    with pytest.raises(AuthenticationError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert "the key in ANTHROPIC_API_KEY was refused (401)" in str(info.value)


async def test_unknown_model_names_the_model(mock_server, make):
    mock_server.configure(models=["claude-other"])
    provider = make()
    with pytest.raises(ModelNotFoundError, match="model 'claude-test' was not found"):
        await provider.complete(_request())
    await provider.aclose()


async def test_429_carries_retry_after(mock_server, make):
    mock_server.configure(faults=["429"], retry_after="12")
    provider = make()
    with pytest.raises(RateLimitError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert info.value.retry_after == 12.0 and info.value.retryable
    assert len(mock_server.requests) == 1  # max_retries=0: the SDK did not retry


async def test_exhausted_credit_is_not_retryable(mock_server, make):
    mock_server.configure(faults=["quota"])
    provider = make()
    with pytest.raises(QuotaExceededError):
        await provider.complete(_request())
    await provider.aclose()


@pytest.mark.parametrize(
    "fault, expected", [("500", "server error 500"), ("malformed", "malformed answer"), ("timeout", "within 0.3s")]
)
async def test_transient_failures(mock_server, make, fault, expected):
    mock_server.configure(faults=[fault], timeout_s=5.0)
    provider = make(timeout_s=0.3)
    with pytest.raises(TransientProviderError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert expected in info.value.message and info.value.retryable
    assert len(mock_server.requests) == 1


async def test_bad_request_reports_server_message(mock_server, make):
    mock_server.configure(faults=["400"])
    provider = make()
    with pytest.raises(BadRequestError, match="injected bad request"):
        await provider.complete(_request())
    await provider.aclose()


async def test_key_appears_in_no_error_log_identity_or_repr(mock_server, make, caplog):
    caplog.set_level(logging.DEBUG)
    provider = make()
    texts = [repr(provider), json.dumps(provider.identity())]
    await provider.complete(_request())
    for fault in ("401", "404", "429", "500", "malformed", "400"):
        mock_server.configure(faults=[fault])
        with pytest.raises(Exception) as info:
            await provider.complete(_request())
        texts += [str(info.value), repr(info.value), str(info.value.hint)]
    await provider.aclose()
    assert provider.identity() == {"provider": "anthropic", "model": "claude-test", "base_url": mock_server.url}
    assert KEY not in "\n".join(texts) and KEY not in caplog.text


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        create_provider(ProviderConfig(provider="anthropic"))
    assert "ANTHROPIC_API_KEY" in str(info.value)


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(MissingDependencyError) as info:
        create_provider(ProviderConfig(provider="anthropic"))
    assert "pip install 'fountain[anthropic]'" in str(info.value)
