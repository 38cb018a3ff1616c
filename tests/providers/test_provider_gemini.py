"""The gemini adapter (real ``google-genai`` SDK) against the loopback mock server."""

from __future__ import annotations

import json
import logging
import sys

import jsonschema
import pytest

pytest.importorskip("google.genai")  # the optional extra; CI installs it with fountain[dev]

from fountain.errors import (  # noqa: E402
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    MissingDependencyError,
    ModelNotFoundError,
    RateLimitError,
    TransientProviderError,
)
from fountain.providers import create_provider  # noqa: E402
from fountain.providers.base import Message, ProviderConfig, Request, Sampling  # noqa: E402
from fountain.providers.gemini import _retry_delay, openapi_schema  # noqa: E402
from provider_helpers import MESSAGES, conversation_schema, make_request, provider_maker  # noqa: E402

KEY = "AIza-test-1122334455-secret"
SCHEMA = conversation_schema()


def _request(**overrides) -> Request:
    return make_request(
        **{
            "schema": SCHEMA,
            "messages": (*MESSAGES, Message("assistant", "Sure."), Message("user", "Go on.")),
            "seed": 5,
            "sample_index": 2,
            **overrides,
        },
    )


@pytest.fixture
def make(mock_server, monkeypatch):
    env, unset = {"GEMINI_API_KEY": KEY}, ("GOOGLE_API_KEY",)
    return provider_maker(monkeypatch, "gemini", env=env, unset=unset, model="gemini-test", base_url=mock_server.url)


async def test_schema_is_sent_natively_and_answer_parsed(mock_server, make):
    mock_server.configure(api_key=KEY, models=["gemini-test"])
    provider = make(sampling=Sampling(temperature=0.4, max_tokens=800))
    completion = await provider.complete(_request())
    await provider.aclose()

    (recorded,) = mock_server.requests
    body = recorded.body
    assert recorded.path.endswith("/models/gemini-test:generateContent") and recorded.has_key
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA  # full JSON Schema, additionalProperties included
    assert config["temperature"] == 0.4 and config["maxOutputTokens"] == 800
    assert config["seed"] == (5 * 1_000_003 + 2) % (2**31 - 1)
    assert body["systemInstruction"]["parts"] == [{"text": "You write dialogues."}]
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "Write one."),
        ("model", "Sure."),
        ("user", "Go on."),
    ]

    jsonschema.validate(completion.data, SCHEMA)
    assert json.loads(completion.text) == completion.data
    assert completion.finish_reason == "STOP"
    assert completion.model == "gemini-test"
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == len(completion.text) // 4


async def test_openapi_mode_strips_unsupported_keywords(mock_server, make):
    provider = make(extra={"schema_mode": "openapi"})
    completion = await provider.complete(_request())
    await provider.aclose()
    config = mock_server.requests[0].body["generationConfig"]
    assert "responseJsonSchema" not in config
    assert "additionalProperties" not in json.dumps(config["responseSchema"])
    jsonschema.validate(completion.data, SCHEMA)


def test_openapi_schema_conversion():
    converted = openapi_schema(
        {
            "$schema": "x",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "a": {"type": ["string", "null"], "const": "q"},
                "b": {"type": "array", "items": {"type": "integer", "$comment": "c"}},
            },
        }
    )
    assert converted == {
        "type": "object",
        "properties": {"a": {"type": "string", "nullable": True}, "b": {"type": "array", "items": {"type": "integer"}}},
    }


async def test_invalid_key_gives_clear_error(mock_server, make):
    # the real API answers a bad key with 400 API_KEY_INVALID, which the mock imitates
    mock_server.configure(api_key="AIza-the-right-one")
    provider = make()
    with pytest.raises(AuthenticationError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert "the key in GEMINI_API_KEY or GOOGLE_API_KEY was refused (400)" in str(info.value)


async def test_401_is_an_authentication_error(mock_server, make):
    mock_server.configure(faults=["401"])
    provider = make()
    with pytest.raises(AuthenticationError, match=r"refused \(401\)"):
        await provider.complete(_request())
    await provider.aclose()


async def test_unknown_model_names_the_model(mock_server, make):
    mock_server.configure(models=["gemini-other"])
    provider = make()
    with pytest.raises(ModelNotFoundError, match="model 'gemini-test' was not found"):
        await provider.complete(_request())
    await provider.aclose()


async def test_429_carries_retry_after(mock_server, make):
    mock_server.configure(faults=["429"], retry_after="9")
    provider = make()
    with pytest.raises(RateLimitError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert info.value.retry_after == 9.0 and info.value.retryable
    assert len(mock_server.requests) == 1  # the SDK did not retry


def test_retry_delay_from_retry_info():
    body = {
        "error": {
            "code": 429,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }
    assert _retry_delay(body) == 37.0
    assert _retry_delay({"error": {"code": 429}}) is None


@pytest.mark.parametrize(
    "fault, expected", [("500", "server error 500"), ("malformed", "malformed answer"), ("timeout", "within 1s")]
)
async def test_transient_failures(mock_server, make, fault, expected):
    mock_server.configure(faults=[fault], timeout_s=5.0)
    provider = make(timeout_s=1.0)  # the SDK's timeout is in whole milliseconds
    with pytest.raises(TransientProviderError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert expected in info.value.message and info.value.retryable


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
    assert provider.identity() == {"provider": "gemini", "model": "gemini-test", "base_url": mock_server.url}
    assert KEY not in "\n".join(texts) and KEY not in caplog.text
    assert all(KEY not in r.path + json.dumps(r.query) for r in mock_server.requests)


async def test_google_api_key_is_accepted_too(mock_server, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    mock_server.configure(api_key=KEY)
    provider = create_provider(ProviderConfig(provider="gemini", model="g", base_url=mock_server.url))
    await provider.complete(_request())
    await provider.aclose()
    assert mock_server.requests[0].status == 200


def test_missing_key_names_the_variables(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        create_provider(ProviderConfig(provider="gemini"))
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in str(info.value)


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "google.genai", None)
    with pytest.raises(MissingDependencyError) as info:
        create_provider(ProviderConfig(provider="gemini"))
    assert "pip install 'fountain[gemini]'" in str(info.value)
