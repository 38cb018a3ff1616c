"""The three wire protocols the mock speaks: OpenAI chat completions, Anthropic messages, Gemini generateContent (with their error shapes and refusals of a response_format)."""

from __future__ import annotations

import json
import random
from typing import Any

from aiohttp import web

from fountain.testing.mock_answers import (
    _grounded,
    _text_of,
    _user_text,
    anthropic_envelope,
    conversation_without_schema,
    instance_from_schema,
    openai_envelope,
)

# --- the three APIs --------------------------------------------------------------------------------


def _format_refusal(response_format: Any, refusals: dict[str, int]) -> web.Response | None:
    """The answer of a server that does not take ``response_format`` (None: it takes it)."""
    if not isinstance(response_format, dict):
        return None
    kind = str(response_format.get("type"))
    if kind == "json_object" and "schema" in response_format:
        kind = "json_object_schema"
    status = refusals.get(kind)
    if status is None:
        return None
    # The shape and wording of llama-cpp-python's server, whatever the status.
    message = (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        f"'msg': \"Input should be 'text' or 'json_object'\", 'input': '{kind}'}}"
    )
    kind_name = "internal_server_error" if status >= 500 else "invalid_request_error"
    return _error(status, {"error": {"message": message, "type": kind_name, "param": None, "code": None}})


def _error(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json", headers=headers
    )


class _Api:
    """Per-API parsing of a request and shaping of answers and errors."""

    name = ""

    def model(self, request: web.Request, body: dict[str, Any]) -> str:
        return str(body.get("model", ""))

    def key(self, request: web.Request) -> str | None:
        raise NotImplementedError

    def answer(self, body: dict[str, Any], model: str, rng: random.Random, size: int) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        raise NotImplementedError


class _OpenAI(_Api):
    name = "openai"
    _types = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
        500: "server_error",
    }

    def key(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def answer(self, body: dict[str, Any], model: str, rng: random.Random, size: int) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        if schema is not None:
            data = _grounded(instance_from_schema(schema, rng), body)
        else:
            prompt = " ".join(_text_of(m.get("content")) for m in body.get("messages", []))
            data = conversation_without_schema(prompt, rng)
        text = json.dumps(data, ensure_ascii=False)
        if schema is None and "json" not in prompt.lower() and "only your own words" in prompt.lower():
            # A turn-by-turn request (fountain's role-play prompt, "Only your own words", one
            # utterance of one role, no JSON asked): plain text, as a model would.
            text = _grounded({"assistant": _user_text(rng)}, body)["assistant"]
        return openai_envelope(text, model, rng, size)

    def error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        code = {"quota": "insufficient_quota", "401": "invalid_api_key", "404": "model_not_found"}.get(kind)
        err_type = "insufficient_quota" if kind == "quota" else self._types.get(status, "server_error")
        return _error(status, {"error": {"message": message, "type": err_type, "param": None, "code": code}}, headers)


class _Anthropic(_Api):
    name = "anthropic"
    _types = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
        500: "api_error",
    }

    def key(self, request: web.Request) -> str | None:
        # x-api-key is the documented header; anthropic 2.x sends the key as a Bearer token
        auth = request.headers.get("Authorization", "")
        return request.headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else None)

    def answer(self, body: dict[str, Any], model: str, rng: random.Random, size: int) -> dict[str, Any]:
        tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
        choice = body.get("tool_choice") or {}
        tool = tools.get(choice.get("name")) if choice.get("type") == "tool" else None
        if tool is not None:
            data = _grounded(instance_from_schema(tool.get("input_schema", {}), rng), body)
            content = [
                {"type": "tool_use", "id": f"toolu_{rng.randrange(1 << 48):012x}", "name": tool["name"], "input": data}
            ]
            out_chars, stop = len(json.dumps(data)), "tool_use"
        else:
            prompt = (
                _text_of(body.get("system"))
                + " "
                + " ".join(_text_of(m.get("content")) for m in body.get("messages", []))
            )
            text = json.dumps(conversation_without_schema(prompt, rng), ensure_ascii=False)
            content = [{"type": "text", "text": text}]
            out_chars, stop = len(text), "end_turn"
        return anthropic_envelope(content, stop, model, rng, size, out_chars // 4)

    def error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return _error(
            status,
            {"type": "error", "error": {"type": self._types.get(status, "api_error"), "message": message}},
            headers,
        )


class _Gemini(_Api):
    name = "gemini"
    _statuses = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
    }

    def model(self, request: web.Request, body: dict[str, Any]) -> str:
        return request.match_info.get("model", "")

    def key(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def answer(self, body: dict[str, Any], model: str, rng: random.Random, size: int) -> dict[str, Any]:
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is not None:
            data = _grounded(instance_from_schema(schema, rng), body)
        else:
            prompt = " ".join(_text_of(c.get("parts")) for c in body.get("contents", []))
            prompt += " " + _text_of((body.get("systemInstruction") or {}).get("parts"))
            data = conversation_without_schema(prompt, rng)
        text = json.dumps(data, ensure_ascii=False)
        return {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": size // 4,
                "candidatesTokenCount": len(text) // 4,
                "totalTokenCount": size // 4 + len(text) // 4,
            },
            "modelVersion": model,
        }

    def error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return _error(
            status,
            {"error": {"code": status, "message": message, "status": self._statuses.get(status, "INTERNAL")}},
            headers,
        )


_OPENAI, _ANTHROPIC, _GEMINI = _OpenAI(), _Anthropic(), _Gemini()
