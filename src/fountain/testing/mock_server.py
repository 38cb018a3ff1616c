"""A loopback mock of three model APIs, for tests and the throughput benchmark.

It speaks just enough of each wire protocol for the real clients (fountain's adapters and the
official SDKs pointed at it through their base-URL option) to work unchanged:

- OpenAI chat completions: ``POST /v1/chat/completions`` (also ``/chat/completions``)
- Anthropic messages: ``POST /v1/messages``
- Gemini generateContent: ``POST /v1beta/models/{model}:generateContent`` (also ``/v1/...``)

Every answer is a conversation JSON derived deterministically from the request (from the JSON
schema the request carries when it has one), so an engine run against this server produces valid
data. Latency, jitter and faults (429 with ``Retry-After``, 500, timeouts, malformed JSON, quota,
401, 404, 400) are configurable, as rates or as a script of faults for the next requests.

Three ways to use it::

    python -m fountain.testing.mock_server --port 8011 --latency-ms 100 --error-rate 0.2
    handle = start_in_thread(latency_ms=5); ...; handle.stop()     # programmatic
    def test_x(mock_server): mock_server.configure(faults=["429"])  # pytest fixture (conftest)

While running it also answers ``GET /__mock__/stats``, ``POST /__mock__/configure`` (a JSON
object of options) and ``POST /__mock__/reset``, so a benchmark in another process can drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import signal
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from fountain import aio, fastjson

FAULTS = ("429", "quota", "500", "timeout", "malformed", "401", "404", "400")
# What ``error_rate`` spreads evenly over: the transient faults a long run must survive.
TRANSIENT_FAULTS = ("429", "500", "timeout", "malformed")
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
_INSTRUCT_HINT = re.compile(r'"conversation"\s*:\s*\{')


@dataclass
class MockOptions:
    """Behaviour of the server; every field can be changed while it runs (``configure``)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # uniform in [-jitter, +jitter] around the latency
    error_rate: float = 0.0  # spread evenly over TRANSIENT_FAULTS
    fault_rates: dict[str, float] = field(default_factory=dict)  # e.g. {"429": 0.1, "500": 0.05}
    faults: list[str] = field(default_factory=list)  # scripted: the next requests get these, FIFO
    retry_after: str | None = "1"  # Retry-After header value sent with a 429 (None: no header)
    timeout_s: float = 30.0  # how long a "timeout" fault hangs before answering
    api_key: str | None = None  # when set, any other key (or none) gets 401
    models: list[str] | None = None  # when set, any other model gets 404
    reject_json_schema: bool = False  # OpenAI: answer 400 to response_format type json_schema
    # OpenAI: refuse these response_format forms with this status, in the words of the server
    # that does so: {"json_schema": 500} is llama-cpp-python's server (a pydantic error in a 500);
    # the keys are json_schema, json_object_schema (json_object with a "schema"), json_object.
    format_refusals: dict[str, int] = field(default_factory=dict)
    record: bool = True  # keep every request (headers and body); counts are kept regardless
    seed: int = 0  # seeds the fault and jitter draws
    # scripted raw answers, FIFO, served before anything else: (status, headers, body bytes).
    # For hardening tests and fuzzers: any bytes and headers a hostile or broken server could send.
    raw_answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)


@dataclass
class RecordedRequest:
    """One request as the server received it (authentication headers removed)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    hash: str
    api: str  # "openai" | "anthropic" | "gemini"
    has_key: bool = False  # whether the request carried a credential (its value is never kept)
    status: int = 0  # what the server answered (0 while in flight)
    received_at: float = 0.0  # time.time() when it arrived (rate measurements)


class MockState:
    """Options, recorded requests and counters; shared by the server loop and its users."""

    def __init__(self, **options: Any):
        self.options = MockOptions()
        self.requests: list[RecordedRequest] = []
        self.received = 0
        self.first_received_at: float | None = None  # wall clock of the first request (start-up benchmarks)
        self.completed: Counter[str] = Counter()  # request hash -> successful answers sent
        self.statuses: Counter[int] = Counter()
        self._scripted: deque[str] = deque()
        self._raw: deque[tuple[int, dict[str, str], bytes]] = deque()
        self._rng = random.Random(0)
        self.configure(**options)

    def configure(self, **options: Any) -> None:
        names = {f.name for f in fields(MockOptions)}
        unknown = set(options) - names
        if unknown:
            raise TypeError(f"unknown mock server option(s): {sorted(unknown)}")
        for name, value in options.items():
            setattr(self.options, name, value)
        bad = [f for f in list(self.options.fault_rates) + list(options.get("faults", ())) if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault(s) {bad}; known: {FAULTS}")
        if "faults" in options:
            self._scripted = deque(options["faults"])
        if "raw_answers" in options:
            self._raw = deque(options["raw_answers"])
        if "seed" in options:
            self._rng = random.Random(options["seed"])

    def reset(self) -> None:
        """Forget recorded requests and counters and restore the default options."""
        self.requests.clear()
        self.received = 0
        self.first_received_at = None
        self.completed.clear()
        self.statuses.clear()
        self._scripted.clear()
        self._raw.clear()
        self.options = MockOptions()
        self._rng = random.Random(0)
        batch = getattr(self, "batch", None)  # the batch APIs' jobs (fountain.testing.batch_mock)
        if batch is not None:
            batch.__init__()

    def next_raw(self) -> tuple[int, dict[str, str], bytes] | None:
        """The next scripted raw answer, if any."""
        return self._raw.popleft() if self._raw else None

    def next_fault(self) -> str | None:
        if self._scripted:
            return self._scripted.popleft()
        opts = self.options
        if opts.error_rate <= 0 and not opts.fault_rates:
            return None
        draw = self._rng.random()
        acc = 0.0
        for name in TRANSIENT_FAULTS:
            acc += opts.error_rate / len(TRANSIENT_FAULTS)
            if draw < acc:
                return name
        for name, rate in opts.fault_rates.items():
            acc += rate
            if draw < acc:
                return name
        return None

    def delay(self) -> float:
        opts = self.options
        if opts.jitter_ms:
            ms = opts.latency_ms + self._rng.uniform(-opts.jitter_ms, opts.jitter_ms)
        else:
            ms = opts.latency_ms
        return max(ms, 0.0) / 1000.0

    def duplicates(self) -> dict[str, int]:
        """Request hashes answered successfully more than once (a resumed run must have none)."""
        return {h: n for h, n in self.completed.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "first_received_at": self.first_received_at,
            "completed": sum(self.completed.values()),
            "distinct_completed": len(self.completed),
            "duplicates": len(self.duplicates()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


# --- deterministic answers -----------------------------------------------------------------------

_OPENERS = (
    "Honestly,",
    "Lately",
    "So",
    "Here is the thing:",
    "I wonder whether",
    "Quick question:",
    "To be frank,",
    "Okay, so",
    "This week",
    "Between us,",
    "Right now",
    "Recently",
)
_SUBJECTS = (
    "my partner",
    "my manager",
    "the team",
    "our landlord",
    "my brother",
    "the client",
    "my roommate",
    "the new hire",
    "my mother",
    "our neighbour",
    "the reviewer",
    "my best friend",
    "the committee",
    "my coach",
    "the school",
)
_VERBS = (
    "handle",
    "plan",
    "discuss",
    "fix",
    "budget for",
    "explain",
    "schedule",
    "rethink",
    "negotiate",
    "document",
    "prioritise",
    "revisit",
    "test",
    "untangle",
    "share",
)
_OBJECTS = (
    "the weekly chores",
    "a late invoice",
    "the holiday trip",
    "our savings goal",
    "a flaky unit test",
    "the morning routine",
    "a tense dinner",
    "the moving boxes",
    "the garden project",
    "an overdue report",
    "the car repair",
    "a birthday surprise",
    "the database migration",
    "our shared calendar",
    "the kitchen renovation",
    "a job offer",
    "the reading list",
    "the quarterly review",
    "a noisy pipeline",
)
_QUALIFIERS = (
    "without starting another argument",
    "before the deadline on Friday",
    "in small steps",
    "with a written checklist",
    "while keeping everyone informed",
    "by agreeing on one concrete rule",
    "using a shared spreadsheet",
    "after a calm conversation",
    "with a fixed weekly slot",
    "by testing one change",
    "without spending extra money",
    "by asking for a second opinion",
)
_ADVICE = (
    "Start by writing down what",
    "It helps to agree on how",
    "Try to notice when",
    "Consider asking",
    "A practical first step is to decide how",
    "Think about why",
    "You could propose that",
    "Set aside ten minutes to review how",
)
_FOLLOWUPS = (
    "Then check after a week whether it worked.",
    "Keep the tone curious rather than blaming.",
    "Write the agreement down so nobody has to remember it.",
    "Pick the smallest change that would make a difference.",
    "Revisit the plan together once the first result is in.",
    "Name one thing that already works and keep it.",
    "Measure it once before and once after the change.",
    "Ask what the other person needs before proposing a fix.",
)


def _user_text(rng: random.Random) -> str:
    return (
        f"{rng.choice(_OPENERS)} how should I {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"when {rng.choice(_SUBJECTS)} keeps asking me to {rng.choice(_VERBS)} "
        f"{rng.choice(_OBJECTS)}? Case {rng.randrange(10_000)}."
    )


def _fresh(rng: random.Random, options: tuple[str, ...], used: set[str] | None) -> str:
    """One of ``options``, not one already ``used`` in this answer while any is left (a decent
    model does not say the same sentence twice in a conversation)."""
    left = [o for o in options if used is None or o not in used] or list(options)
    choice = rng.choice(left)
    if used is not None:
        used.add(choice)
    return choice


def _assistant_text(rng: random.Random, used: set[str] | None = None) -> str:
    return (
        f"{_fresh(rng, _ADVICE, used)} {rng.choice(_SUBJECTS)} wants to {rng.choice(_VERBS)} "
        f"{rng.choice(_OBJECTS)}, and {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"{rng.choice(_QUALIFIERS)}. {_fresh(rng, _FOLLOWUPS, used)} "
        f"Plan number {rng.randrange(10_000)} is a reasonable place to begin."
    )


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return "string"
    return str(kind).lower()  # Gemini's responseSchema spells types in capitals


def instance_from_schema(
    schema: Any, rng: random.Random, key: str = "", root: Any = None, used: set[str] | None = None
) -> Any:
    """A value valid against the (simple) JSON schema, with readable text in strings (no sentence
    of the assistant's said twice in one answer).

    Local ``$ref``s (``#/$defs/...``, ``#/definitions/...``) are followed.
    """
    used = set() if used is None else used
    if not isinstance(schema, dict):
        return _assistant_text(rng, used)
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance_from_schema(target, rng, key, root, used)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return instance_from_schema(schema[combinator][0], rng, key, root, used)
    kind = _schema_type(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        names = schema.get("required") or list(props)
        return {name: instance_from_schema(props.get(name, {}), rng, name, root, used) for name in names}
    if kind == "array":
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", low + 2))
        count = rng.randint(low, max(low, min(high, low + 4)))
        return [instance_from_schema(schema.get("items", {}), rng, key, root, used) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 10)
        return rng.randint(int(low), int(high))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    text = _user_text(rng) if key == "user" else _assistant_text(rng, used)
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    if min_len and len(text) < int(min_len):
        text = (text + " ") * (int(min_len) // max(len(text), 1) + 1)
    if max_len:
        text = text[: int(max_len)]
    return text


_TOPIC = re.compile(r"\btopic:\s*([^.\n%\\\"]{1,80})", re.I)


def _grounded(data: Any, body: Any) -> Any:
    """``data`` with its first assistant message naming the prompt's ``Topic:`` (as a model that
    reads the scene would), so answers pass fountain's grounding gate."""
    found = _TOPIC.search(json.dumps(body, ensure_ascii=False))
    if not found:
        return data
    topic = " ".join(found.group(1).split())

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if isinstance(node.get("assistant"), str):
                node["assistant"] += f" We will keep {topic} in mind."
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    walk(data)
    return data


def conversation_without_schema(prompt: str, rng: random.Random) -> dict[str, Any]:
    """What a model asked in prose for the Janus output format would answer."""
    if _INSTRUCT_HINT.search(prompt):
        return {"conversation": {"user": _user_text(rng), "assistant": _assistant_text(rng)}}
    turns = rng.randint(2, 3)
    used: set[str] = set()
    return {"conversations": [{"user": _user_text(rng), "assistant": _assistant_text(rng, used)} for _ in range(turns)]}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts / Anthropic blocks / Gemini parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


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
        completion_tokens = len(text) // 4
        prompt_tokens = size // 4
        return {
            "id": f"chatcmpl-{rng.randrange(1 << 48):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

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
        return {
            "id": f"msg_{rng.randrange(1 << 48):012x}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": size // 4, "output_tokens": out_chars // 4},
        }

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


async def _sleep_until(deadline: float) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining > 0:
        await asyncio.sleep(remaining)


class MockServer:
    """The aiohttp application around a :class:`MockState`."""

    def __init__(self, state: MockState):
        self.state = state
        self.stopping: asyncio.Event | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", ""):
            self.app.router.add_post(prefix + "/chat/completions", self._handler(_OPENAI))
        self.app.router.add_post("/v1/messages", self._handler(_ANTHROPIC))
        for version in ("v1beta", "v1", "v1alpha"):
            self.app.router.add_post(f"/{version}/models/{{model}}:generateContent", self._handler(_GEMINI))
        from fountain.testing.batch_mock import BatchRoutes

        self.batch = BatchRoutes(self)  # the three batch APIs (state in self.state.batch)
        self.app.router.add_get("/__mock__/stats", self._stats)
        self.app.router.add_post("/__mock__/configure", self._configure)
        self.app.router.add_post("/__mock__/reset", self._reset)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.stats())

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            self.state.configure(**(await request.json()))
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"ok": True})

    def _handler(self, api: _Api):
        async def handle(request: web.Request) -> web.Response:
            record: list[RecordedRequest] = []
            response = await self._serve(api, request, record)
            if record:
                record[0].status = response.status
            self.state.statuses[response.status] += 1
            return response

        return handle

    async def _serve(self, api: _Api, request: web.Request, record_out: list[RecordedRequest]) -> web.Response:
        state = self.state
        opts = state.options
        loop = asyncio.get_running_loop()
        # The configured latency runs from the moment this handler starts: the answer is built
        # while it runs, so the mock's own CPU per request does not add to what a client sees.
        arrived = loop.time()
        raw = await request.read()
        state.received += 1
        if state.first_received_at is None:
            state.first_received_at = time.time()
        request_hash = hashlib.blake2b(request.path.encode() + b"\0" + raw, digest_size=16).hexdigest()
        try:
            body = fastjson.loads(raw) if raw else {}
        except ValueError:
            return api.error(400, "400", "the request body is not valid JSON")
        if opts.record:
            record = RecordedRequest(
                request.method,
                request.path,
                {k: v for k, v in request.headers.items() if k.lower() not in _AUTH_HEADERS},
                {k: v for k, v in request.query.items() if k != "key"},
                body,
                request_hash,
                api.name,
                has_key=bool(api.key(request)),
                received_at=time.time(),
            )
            state.requests.append(record)
            record_out.append(record)
        model = api.model(request, body)
        raw_answer = state.next_raw()
        if raw_answer is not None:
            status, headers, payload = raw_answer
            return web.Response(status=status, headers=headers, body=payload)

        if opts.api_key is not None and api.key(request) != opts.api_key:
            if api is _GEMINI:  # the real Gemini API answers a bad key with 400 API_KEY_INVALID
                return _error(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "status": "INVALID_ARGUMENT",
                            "message": "API key not valid. Please pass a valid API key.",
                            "details": [
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                            ],
                        }
                    },
                )
            return api.error(401, "401", "Incorrect API key provided.")
        if opts.models is not None and model not in opts.models:
            return api.error(404, "404", f"The model `{model}` does not exist or you do not have access to it.")
        if (
            api is _OPENAI
            and opts.reject_json_schema
            and (body.get("response_format") or {}).get("type") == "json_schema"
        ):
            return api.error(400, "400", "response_format type 'json_schema' is not supported by this server")
        if api is _OPENAI and opts.format_refusals:
            refusal = _format_refusal(body.get("response_format"), opts.format_refusals)
            if refusal is not None:
                return refusal

        fault = state.next_fault()
        delay = state.delay()
        if fault == "timeout":
            await self._hang(opts.timeout_s)
            delay = 0.0
        deadline = arrived + delay
        if fault is not None and fault != "timeout":
            await _sleep_until(deadline)
            return self._fault(api, fault, model)
        # A "timeout" answers normally after its hang, to a client that is usually gone by then.
        answer = fastjson.dumps_bytes(api.answer(body, model, random.Random(request_hash), len(raw)))
        await _sleep_until(deadline)
        transport = request.transport
        # Count an answer as completed only if the client is still there to receive it: a client
        # that gave up (timeout) or was killed will send the request again, legitimately.
        if transport is not None and not transport.is_closing():
            state.completed[request_hash] += 1
        return web.Response(body=answer, content_type="application/json")

    async def _hang(self, seconds: float) -> None:
        assert self.stopping is not None
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _fault(self, api: _Api, fault: str, model: str) -> web.Response:
        opts = self.state.options
        if fault == "429":
            headers = {"Retry-After": opts.retry_after} if opts.retry_after is not None else None
            return api.error(429, "429", "Rate limit reached for requests. Please try again later.", headers)
        if fault == "quota" and api is _ANTHROPIC:  # Anthropic reports exhausted credit as a 400
            return api.error(400, "quota", "Your credit balance is too low to access the Anthropic API.")
        if fault == "quota":
            return api.error(
                429, "quota", "You exceeded your current quota, please check your plan and billing details."
            )
        if fault == "500":
            return api.error(500, "500", "The server had an error while processing your request.")
        if fault == "malformed":
            return web.Response(
                body=b'{"id": "x", "choices": [{"message": {"content": "{\\"conv', content_type="application/json"
            )
        if fault == "401":
            return api.error(401, "401", "Incorrect API key provided.")
        if fault == "404":
            return api.error(404, "404", f"The model `{model}` does not exist or you do not have access to it.")
        return api.error(400, "400", "Invalid request: injected bad request.")


# --- running it ------------------------------------------------------------------------------------


def _new_loop() -> asyncio.AbstractEventLoop:
    """The loop fountain runs on (uvloop when installed): the server's own CPU per request is
    then smaller, so its answers keep closer to the configured latency when a benchmark shares
    few cores with it."""
    factory = aio.loop_factory()
    return factory() if factory is not None else asyncio.new_event_loop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MockServerHandle:
    """A server running on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, **options: Any):
        self.state = MockState(**options)
        self.host = host
        self.port = port or 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._server: MockServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fountain-mock-server", daemon=True)

    @property
    def url(self) -> str:
        """Base URL without a path: Anthropic's and Gemini's SDKs take it as is."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def options(self) -> MockOptions:
        return self.state.options

    def configure(self, **options: Any) -> None:
        self.state.configure(**options)

    def reset(self) -> None:
        self.state.reset()

    def duplicates(self) -> dict[str, int]:
        return self.state.duplicates()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def start(self) -> MockServerHandle:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"mock server failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("mock server did not start within 10 s")
        return self

    def _run(self) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException as error:  # reported to the thread that called start()
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

    async def _start(self) -> None:
        self._server = MockServer(self.state)
        self._server.stopping = asyncio.Event()
        self._runner = web.AppRunner(self._server.app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop the server (hanging "timeout" answers end at once) and join its thread."""
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return

        def _stop() -> None:
            if self._server is not None and self._server.stopping is not None:
                self._server.stopping.set()
            loop.stop()

        loop.call_soon_threadsafe(_stop)
        self._thread.join(10)

    def __enter__(self) -> MockServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(host: str = "127.0.0.1", port: int | None = None, **options: Any) -> MockServerHandle:
    """Start a mock server in a background thread; ``port=None`` picks a free port."""
    return MockServerHandle(host, port, **options).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of requests that fail, spread over 429/500/timeout/malformed",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE",
        help=f"rate of one fault ({', '.join(FAULTS)}); repeatable",
    )
    parser.add_argument("--retry-after", default="1", help="Retry-After value sent with 429")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="how long a timeout fault hangs")
    parser.add_argument("--api-key", default=None, help="accept only this key (the others get 401)")
    parser.add_argument("--record", action="store_true", help="keep every request body in memory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the mock server listens on loopback only")
    rates = {}
    for item in args.fault:
        name, _, rate = item.partition("=")
        rates[name] = float(rate or 0)
    handle = MockServerHandle(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        fault_rates=rates,
        retry_after=args.retry_after,
        timeout_s=args.timeout_s,
        api_key=args.api_key,
        record=args.record,
        seed=args.seed,
    )
    handle.start()

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (what a benchmark's Popen.terminate() sends) also stops cleanly and prints the stats.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    print(f"mock server listening on {handle.url} (OpenAI base URL {handle.openai_base_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        print(json.dumps(handle.stats()), flush=True)


if __name__ == "__main__":
    main()
