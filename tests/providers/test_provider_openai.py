"""The openai adapter against the loopback mock server: real HTTP, no network."""

from __future__ import annotations

import email.utils
import json
import logging
import sys
import time

import jsonschema
import pytest

from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    TransientProviderError,
)
from fountain.providers.base import ProviderConfig, Request, Sampling
from fountain.providers.openai import OpenAIProvider, normalize_base_url
from provider_helpers import conversation_schema, make_request, provider_maker

KEY = "sk-test-9f8e7d6c5b4a-secret"
SCHEMA = conversation_schema(min_items=2, max_items=4)


@pytest.fixture(autouse=True, params=["aiohttp", "pyreqwest"])
def http_client(request, monkeypatch):
    """Every test here runs with both HTTP clients the adapter can use."""
    if request.param == "pyreqwest":
        pytest.importorskip("pyreqwest", reason="pyreqwest needs Python 3.11+")
    monkeypatch.setenv("FOUNTAIN_HTTP_CLIENT", request.param)
    return request.param


def _request(**overrides) -> Request:
    return make_request(**{"schema": SCHEMA, "sample_index": 3, **overrides})


@pytest.fixture
def provider_factory(mock_server, monkeypatch):
    env = {"OPENAI_API_KEY": KEY}
    return provider_maker(monkeypatch, "openai", env=env, model="gpt-test", base_url=mock_server.openai_base_url)


async def test_schema_is_sent_natively_and_answer_parsed(mock_server, provider_factory):
    mock_server.configure(api_key=KEY, models=["gpt-test"])
    provider = provider_factory(sampling=Sampling(temperature=0.2, max_tokens=500))
    completion = await provider.complete(_request(sampling=Sampling(temperature=0.9)))
    await provider.aclose()

    (recorded,) = mock_server.requests
    body = recorded.body
    assert recorded.path == "/v1/chat/completions" and recorded.has_key
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "You write dialogues."},
        {"role": "user", "content": "Write one."},
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "conversation", "schema": SCHEMA, "strict": True},
    }
    assert body["temperature"] == 0.9  # the request's own value wins over the configured one
    assert body["max_tokens"] == 500  # a compatible server gets max_tokens
    assert body["seed"] == (7 * 1_000_003 + 3) % (2**31 - 1)

    jsonschema.validate(completion.data, SCHEMA)
    assert json.loads(completion.text) == completion.data
    assert completion.finish_reason == "stop"
    assert completion.model == "gpt-test"
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == len(completion.text) // 4


async def test_sample_index_changes_seed_and_answer(mock_server, provider_factory):
    provider = provider_factory()
    first = await provider.complete(_request(sample_index=0))
    second = await provider.complete(_request(sample_index=1))
    again = await provider.complete(_request(sample_index=0))
    await provider.aclose()
    seeds = [r.body["seed"] for r in mock_server.requests]
    assert seeds[0] != seeds[1] and seeds[0] == seeds[2]
    assert first.text != second.text and first.text == again.text


async def test_no_seed_without_run_seed_and_no_format_without_schema(mock_server, provider_factory):
    provider = provider_factory()
    completion = await provider.complete(_request(schema=None, seed=None))
    await provider.aclose()
    body = mock_server.requests[0].body
    assert "seed" not in body and "response_format" not in body
    assert completion.data is None and completion.text.startswith("{")


async def test_wrong_key_gives_clear_error(mock_server, provider_factory):
    mock_server.configure(api_key="sk-the-right-one")
    provider = provider_factory()
    with pytest.raises(AuthenticationError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert "the key in OPENAI_API_KEY was refused (401)" in str(info.value)
    assert info.value.status == 401 and not info.value.retryable


async def test_unknown_model_names_the_model(mock_server, provider_factory):
    mock_server.configure(models=["gpt-other"])
    provider = provider_factory()
    with pytest.raises(ModelNotFoundError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert "model 'gpt-test' was not found" in info.value.message
    assert "/v1" in info.value.hint


async def test_429_carries_retry_after_seconds(mock_server, provider_factory):
    mock_server.configure(faults=["429"], retry_after="7")
    provider = provider_factory()
    with pytest.raises(RateLimitError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert info.value.retry_after == 7.0 and info.value.retryable and info.value.status == 429
    assert len(mock_server.requests) == 1  # one attempt: the engine owns retries


async def test_429_retry_after_as_http_date(mock_server, provider_factory):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    mock_server.configure(faults=["429"], retry_after=when)
    provider = provider_factory()
    with pytest.raises(RateLimitError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert 27.0 <= info.value.retry_after <= 30.0


async def test_exhausted_quota_is_not_retryable(mock_server, provider_factory):
    mock_server.configure(faults=["quota"])
    provider = provider_factory()
    with pytest.raises(QuotaExceededError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert not info.value.retryable and "quota" in info.value.message


@pytest.mark.parametrize("fault", ["500", "malformed", "timeout"])
async def test_transient_failures(mock_server, provider_factory, fault):
    mock_server.configure(faults=[fault], timeout_s=5.0)
    provider = provider_factory(timeout_s=0.3)
    with pytest.raises(TransientProviderError) as info:
        await provider.complete(_request())
    await provider.aclose()
    assert info.value.retryable
    # a self-hosted server's first request waits the pacing ceiling, 8 x 0.3 s (providers/pacing.py)
    expected = {"500": "server error 500", "malformed": "malformed JSON", "timeout": "within 2.4s"}[fault]
    assert expected in info.value.message
    assert mock_server.duplicates() == {} and sum(mock_server.state.completed.values()) == 0


async def test_connection_refused_is_transient(monkeypatch):
    from fountain.testing.mock_server import free_port

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = OpenAIProvider(ProviderConfig(provider="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(TransientProviderError, match="connection to"):
        await provider.complete(_request())
    await provider.aclose()


async def test_bad_request_reports_server_message(mock_server, provider_factory):
    mock_server.configure(faults=["400"])
    provider = provider_factory()
    with pytest.raises(BadRequestError, match="injected bad request"):
        await provider.complete(_request(schema=None))
    await provider.aclose()


async def test_json_schema_refused_falls_back_to_json_object_for_the_run(mock_server, provider_factory):
    mock_server.configure(reject_json_schema=True)
    provider = provider_factory()
    completion = await provider.complete(_request())
    second = await provider.complete(_request(sample_index=4))
    await provider.aclose()
    kinds = [r.body.get("response_format", {}).get("type") for r in mock_server.requests]
    # strict schema refused, plain schema refused, JSON mode (with the schema) accepted; then
    # JSON mode directly
    assert kinds == ["json_schema", "json_schema", "json_object", "json_object"]
    assert provider.structured_output == "json_object_schema"
    assert completion.data is not None and second.data is not None


async def test_key_appears_in_no_error_log_identity_or_repr(mock_server, provider_factory, caplog):
    caplog.set_level(logging.DEBUG)
    provider = provider_factory()
    texts = [repr(provider), json.dumps(provider.identity())]
    await provider.complete(_request())
    for fault in ("401", "404", "429", "500", "malformed", "400"):
        mock_server.configure(faults=[fault])
        with pytest.raises(Exception) as info:
            await provider.complete(_request())
        texts += [str(info.value), repr(info.value), str(info.value.hint)]
    await provider.aclose()
    assert provider.identity() == {"provider": "openai", "model": "gpt-test", "base_url": mock_server.openai_base_url}
    assert KEY not in "\n".join(texts) and KEY not in caplog.text
    assert all(KEY not in json.dumps(r.headers) + json.dumps(r.body) for r in mock_server.requests)


async def test_official_endpoint_requires_the_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        OpenAIProvider(ProviderConfig(provider="openai"))
    assert "OPENAI_API_KEY" in str(info.value)


async def test_named_key_variable_is_required_and_used(mock_server, monkeypatch):
    monkeypatch.delenv("MY_SERVER_KEY", raising=False)
    config = ProviderConfig(
        provider="openai", model="m", base_url=mock_server.openai_base_url, api_key_env="MY_SERVER_KEY"
    )
    with pytest.raises(MissingAPIKeyError, match="MY_SERVER_KEY"):
        OpenAIProvider(config)
    monkeypatch.setenv("MY_SERVER_KEY", "local-key-123")
    mock_server.configure(api_key="local-key-123")
    provider = OpenAIProvider(config)
    await provider.complete(_request())
    await provider.aclose()
    assert mock_server.requests[0].status == 200


async def test_local_server_needs_no_key(mock_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider(ProviderConfig(provider="openai", model="llama3", base_url=mock_server.url))
    completion = await provider.complete(_request())
    await provider.aclose()
    assert completion.data is not None
    assert not mock_server.requests[0].has_key  # no Authorization header at all


async def test_key_refused_without_key_says_to_set_one(mock_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    mock_server.configure(api_key="needed")
    provider = OpenAIProvider(ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url))
    with pytest.raises(AuthenticationError, match="wants an API key"):
        await provider.complete(_request())
    await provider.aclose()


def test_works_without_the_openai_sdk(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert OpenAIProvider(ProviderConfig(provider="openai")).model == "gpt-4o-mini"


def test_official_endpoint_uses_max_completion_tokens(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = OpenAIProvider(ProviderConfig(provider="openai", sampling=Sampling(max_tokens=99)))
    body = json.loads(provider._body(_request(), 0))
    assert body["max_completion_tokens"] == 99 and "max_tokens" not in body


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, "https://api.openai.com/v1"),
        ("http://localhost:11434", "http://localhost:11434/v1"),
        ("http://localhost:8000/v1/", "http://localhost:8000/v1"),
        ("http://localhost:8080/v1/chat/completions", "http://localhost:8080/v1"),
        ("https://example.com/openai/v1", "https://example.com/openai/v1"),
    ],
)
def test_base_url_normalisation(given, expected):
    assert normalize_base_url(given) == expected


async def test_mock_answers_fit_the_project_schema_and_repeats_are_counted(mock_server, provider_factory):
    from fountain.resources import load_schema

    schema = load_schema("conversation.schema.json")  # with $defs/$ref, as the mock must cope
    provider = provider_factory()
    for index in range(5):
        completion = await provider.complete(_request(schema=schema, sample_index=index))
        jsonschema.validate(completion.data, schema)
    assert mock_server.duplicates() == {}
    await provider.complete(_request(schema=schema, sample_index=0))  # the same request again
    await provider.aclose()
    assert list(mock_server.duplicates().values()) == [2]


def test_openai_key_is_not_sent_to_a_third_party_host(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    remote = OpenAIProvider(ProviderConfig(provider="openai", base_url="https://llm.example.com/v1"))
    assert "Authorization" not in remote._transport.headers
    monkeypatch.setenv("EXAMPLE_KEY", "ex-key")
    named = OpenAIProvider(
        ProviderConfig(provider="openai", base_url="https://llm.example.com/v1", api_key_env="EXAMPLE_KEY")
    )
    assert named._transport.headers["Authorization"] == "Bearer ex-key"
    local = OpenAIProvider(ProviderConfig(provider="openai", base_url="http://192.168.1.20:8000/v1"))
    assert local._transport.headers["Authorization"] == f"Bearer {KEY}"
