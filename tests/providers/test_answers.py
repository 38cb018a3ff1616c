"""The answer boundary (providers/answers.py): whatever a server sends in a 200 answer becomes a
Completion or a retryable MalformedAnswerError with a reason code, through the real HTTP client."""

from __future__ import annotations

import json
import math

import pytest

from fountain import fastjson
from fountain.errors import ProviderError, RateLimitError
from fountain.providers import create_provider
from fountain.providers.answers import MAX_DEPTH, MalformedAnswerError, content_text, parse_body, usage_of
from fountain.providers.base import Message, ProviderConfig, Request
from fountain.providers.http import parse_retry_after, retry_after_from_headers
from fountain.providers.throttle import RetryPolicy
from fountain.types import MAX_TOKENS, Usage

SCHEMA = {"type": "object", "properties": {"conversations": {"type": "array"}}}


def _request() -> Request:
    return Request(messages=(Message("user", "Write one."),), schema=SCHEMA)


def _answer(content, usage=None) -> bytes:
    body = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


async def _complete(mock_server, monkeypatch, raw: bytes, status: int = 200, headers=None):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    mock_server.configure(raw_answers=[(status, headers or {"Content-Type": "application/json"}, raw)])
    provider = create_provider(
        ProviderConfig(provider="openai", model="m", base_url=mock_server.openai_base_url, timeout_s=5)
    )
    try:
        return await provider.complete(_request())
    finally:
        await provider.aclose()


def test_json_nested_deeper_than_the_stack_is_a_value_error_not_a_recursion_error():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ValueError):
        fastjson.loads(deep)


async def test_a_deeply_nested_answer_is_a_malformed_answer(mock_server, monkeypatch):
    raw = b'{"choices": [{"message": {"content": "x"}}], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(MalformedAnswerError) as info:
        await _complete(mock_server, monkeypatch, raw)
    assert info.value.reason in ("too_deep", "not_json") and info.value.retryable


@pytest.mark.parametrize("extra", [1, 40])
def test_a_body_one_level_too_deep_is_too_deep_and_the_limit_itself_passes(extra):
    from fountain.providers.answers import MAX_DEPTH, parse_body

    def nested(depth: int) -> bytes:
        return b'{"a": ' * (depth - 1) + b"[1]" + b"}" * (depth - 1)

    assert parse_body(nested(MAX_DEPTH), "openai") is not None
    with pytest.raises(MalformedAnswerError) as info:
        parse_body(nested(MAX_DEPTH + extra), "openai")
    assert info.value.reason == "too_deep"


async def test_deep_json_inside_the_content_leaves_data_unset(mock_server, monkeypatch):
    text = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    completion = await _complete(mock_server, monkeypatch, _answer(text))
    assert completion.data is None and completion.text == text


@pytest.mark.parametrize("content", [42, True, {"a": 1}, 3.5, [{"text": 5}]])
async def test_non_text_content_is_rejected_with_a_reason(mock_server, monkeypatch, content):
    with pytest.raises(MalformedAnswerError) as info:
        await _complete(mock_server, monkeypatch, _answer(content))
    assert info.value.reason == "bad_content" and "content" in info.value.message


async def test_content_parts_are_joined(mock_server, monkeypatch):
    parts = [{"type": "text", "text": '{"conversations": '}, {"type": "text", "text": "[]}"}, "junk"]
    completion = await _complete(mock_server, monkeypatch, _answer(parts))
    assert completion.data == {"conversations": []}


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "ten", "completion_tokens": "ten"},
        {"prompt_tokens": -5, "completion_tokens": -1},
        {"prompt_tokens": None, "completion_tokens": []},
        "lots",
        [1, 2],
    ],
)
async def test_unusable_usage_counts_become_zero(mock_server, monkeypatch, usage):
    completion = await _complete(mock_server, monkeypatch, _answer("{}", usage))
    assert completion.usage == Usage(0, 0)


async def test_non_finite_and_huge_usage_is_clamped(mock_server, monkeypatch):
    raw = b'{"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": NaN, "completion_tokens": 1e30}}'
    completion = await _complete(mock_server, monkeypatch, raw)
    assert completion.usage == Usage(0, MAX_TOKENS)
    raw = b'{"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": Infinity, "completion_tokens": 1e400}}'
    completion = await _complete(mock_server, monkeypatch, raw)
    assert completion.usage == Usage(0, 0)


def test_usage_from_a_stored_row_never_raises():
    assert Usage.from_dict({"prompt_tokens": "ten", "completion_tokens": float("nan")}) == Usage(0, 0)
    assert Usage.from_dict({"prompt_tokens": 1e30}) == Usage(MAX_TOKENS, 0)
    assert Usage.from_dict("nonsense") == Usage(0, 0)  # type: ignore[arg-type]
    assert usage_of({"prompt_tokens": "12", "completion_tokens": 3.9}) == Usage(12, 3)


async def test_a_non_object_answer_is_a_malformed_answer(mock_server, monkeypatch):
    for raw in (b"[1, 2]", b'"text"', b"null", b"not json at all", b'{"choices": "x"}'):
        with pytest.raises(MalformedAnswerError):
            await _complete(mock_server, monkeypatch, raw)


def test_content_text_reports_the_type():
    with pytest.raises(MalformedAnswerError, match="int"):
        content_text(7, "openai")
    assert content_text(None, "openai") == ""


def test_a_huge_body_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr("fountain.providers.answers.MAX_ANSWER_BYTES", 10)
    with pytest.raises(MalformedAnswerError) as info:
        parse_body(b'{"choices": [1, 2, 3]}', "openai")
    assert info.value.reason == "too_large" and "limit 10" in info.value.message


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "Infinity"])
def test_a_non_finite_retry_after_is_ignored(value):
    assert parse_retry_after(value) is None
    assert retry_after_from_headers({"retry-after-ms": value}) is None


@pytest.mark.parametrize("value", [100000.0, 1e300, 121.0])
def test_retry_after_is_capped_at_120_seconds_by_default(value, monkeypatch):
    monkeypatch.delenv("FOUNTAIN_MAX_RETRY_AFTER", raising=False)
    assert RetryPolicy().delay(1, value) == 120.0
    assert RetryPolicy().delay(1, 3.0) == 3.0
    assert not math.isnan(RetryPolicy(jitter=False).delay(1, float("nan")))


def test_retry_after_cap_is_configurable(monkeypatch):
    monkeypatch.setenv("FOUNTAIN_MAX_RETRY_AFTER", "5")
    assert RetryPolicy().delay(1, 100000.0) == 5.0
    monkeypatch.setenv("FOUNTAIN_MAX_RETRY_AFTER", "inf")
    assert RetryPolicy().delay(1, 100000.0) == 120.0


async def test_a_429_with_retry_after_inf_carries_no_wait(mock_server, monkeypatch):
    body = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
    with pytest.raises(RateLimitError) as info:
        await _complete(mock_server, monkeypatch, body, status=429, headers={"Retry-After": "inf"})
    assert info.value.retry_after is None


async def test_error_bodies_of_any_shape_are_provider_errors(mock_server, monkeypatch):
    for body in (b"[" * 5000, b'{"error": 5}', b'{"error": {"message": {"x": 1}}}', b"\xff\xfe"):
        with pytest.raises(ProviderError):
            await _complete(mock_server, monkeypatch, body, status=500)


async def test_an_answer_that_under_reports_usage_is_charged_its_estimate():
    # Estimate: ~3 prompt tokens + max_tokens 100_000 at $2/1M = $0.2; the answer reports 0 tokens.
    from dispatch_helpers import PRICES, Sleeps, request
    from fountain.errors import BudgetExceededError
    from fountain.providers.dispatch import Dispatcher
    from fountain.testing import ScriptedProvider

    provider = ScriptedProvider(usage=Usage(0, 0))
    d = Dispatcher(provider, sleep=Sleeps(), prices=PRICES, budget_usd=0.5)
    await d.complete(request(0, max_tokens=100_000))
    await d.complete(request(1, max_tokens=100_000))
    with pytest.raises(BudgetExceededError):
        await d.complete(request(2, max_tokens=100_000))
    assert len(provider.calls) == 2
    assert d.stats.cost_usd == 0.0  # the reported cost stays what the answers said


async def test_negative_usage_never_gives_negative_cost(mock_server, monkeypatch):
    from dispatch_helpers import PRICES, Sleeps
    from fountain.providers.dispatch import Dispatcher

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    raw = _answer("{}", {"prompt_tokens": -1_000_000, "completion_tokens": -5})
    mock_server.configure(raw_answers=[(200, {"Content-Type": "application/json"}, raw)])
    provider = create_provider(
        ProviderConfig(provider="openai", model="gpt-4o-mini", base_url=mock_server.openai_base_url, timeout_s=5)
    )
    d = Dispatcher(provider, sleep=Sleeps(), prices=PRICES, budget_usd=0.2)
    try:
        await d.complete(_request())
    finally:
        await provider.aclose()
    assert d.stats.cost_usd == 0.0 and d.stats.usage == Usage(0, 0)


@pytest.mark.parametrize("provider_name", ["anthropic", "gemini"])
async def test_sdk_adapters_redact_an_echoed_key_and_escape_controls(mock_server, monkeypatch, provider_name):
    key = "sk-ant-echoed-0123456789abcdef"
    env = {"anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}[provider_name]
    monkeypatch.setenv(env, key)
    text = f"invalid key {key}\x1b]0;title\x07"
    body = (
        {"type": "error", "error": {"type": "authentication_error", "message": text}}
        if provider_name == "anthropic"
        else {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": text}}
    )
    raw = json.dumps(body).encode()
    mock_server.configure(raw_answers=[(401, {"Content-Type": "application/json"}, raw)] * 3)
    provider = create_provider(ProviderConfig(provider=provider_name, model="m", base_url=mock_server.url, timeout_s=5))
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(_request())
    finally:
        await provider.aclose()
    assert key not in info.value.message and "\x1b" not in info.value.message
    assert "[redacted]" in info.value.message
