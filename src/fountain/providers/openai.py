"""OpenAI Chat Completions, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio).

Talks HTTP directly through one keep-alive client (:mod:`fountain.providers.transport`:
pyreqwest for ``http://`` servers, aiohttp otherwise) instead of the ``openai`` SDK: on a 2-core
machine the SDK's client tops out near 240 requests/s where a plain aiohttp loop reaches about
2,190 (see DESIGN.md), and the engine, not the SDK, owns retries. Per request the work is one
dict, one JSON encode and two JSON parses (orjson: :mod:`fountain.fastjson`).

Structured output: ``response_format`` of type ``json_schema`` (strict) when the request has a
schema. A server that refuses it is asked again at once with the next weaker form (non-strict
schema, ``json_object`` with the schema, as llama-cpp-python takes it, plain ``json_object``, then
none), and that choice is kept for the rest of the run. A refusal is a 400/422 whose message is
about the format, or any other error status whose message names ``response_format`` (llama-cpp-
python's server answers ``json_schema`` with a 500 carrying a pydantic error). ``structured_output``
(``--structured-output``) pins the form: ``json_schema``, ``json_object`` or ``none``.

Self-hosted servers are paced (:mod:`fountain.providers.pacing`): the timeout follows the slowest
answer, and a timeout lowers the requests in flight instead of resending into the server's queue.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import urlsplit

from fountain import __version__
from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
)
from fountain.fastjson import dumps_bytes, loads
from fountain.providers.answers import MalformedAnswerError, content_text, parse_body, parse_data, usage_of
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.http import (
    combined_seed,
    merged_sampling,
    read_key,
    retry_after_from_headers,
    transient,
)
from fountain.providers.pacing import CEILING_FACTOR, ServerBusyError, ServerPacing
from fountain.providers.transport import (
    BadURL,
    TransportError,
    TransportTimeout,
    make_transport,
)
from fountain.safety import safe_text

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"

# Structured-output levels, strongest first; a server that refuses one gets the next.
LEVELS = ("json_schema_strict", "json_schema", "json_object_schema", "json_object", "none")
# What --structured-output may pin: the levels the ladder may use (first, last).
FORCED = {
    **{name: (i, i) for i, name in enumerate(LEVELS)},
    "auto": (0, 4),
    "json_schema": (0, 1),
    "json_object": (2, 3),
}
_FORMAT_COMPLAINT = re.compile(r"response_format|json_schema|json schema|schema|strict|json_object", re.IGNORECASE)
# Any other status is a refusal only when its message names the field itself.
_FORMAT_NAMED = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)


def refuses_format(status: int, message: str | None) -> bool:
    """Whether an error answer is the server refusing the request's ``response_format``."""
    if status == 200 or not message:
        return False
    if status in (400, 422):
        return _FORMAT_COMPLAINT.search(message) is not None
    if status in (401, 403, 404, 408, 429):
        return False
    return _FORMAT_NAMED.search(message) is not None


_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
# asyncio.timeout (Python 3.11+) bounds a request without a task of its own (wait_for makes one)
_timeout: Any = getattr(asyncio, "timeout", None)


def normalize_base_url(base_url: str | None) -> str:
    """``http://host:port`` gets ``/v1`` (what every compatible server serves); a pasted
    ``.../chat/completions`` is trimmed back to the base."""
    url = (base_url or DEFAULT_BASE_URL).strip().rstrip("/")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    if not urlsplit(url).path:
        url += "/v1"
    return url


def _is_official(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "api.openai.com" or host.endswith(".openai.com")


def _is_local(url: str) -> bool:
    """Loopback and private-network hosts: where self-hosted servers (Ollama, vLLM...) live."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "::1", "0.0.0.0", "host.docker.internal") or host.endswith(".local"):
        return True
    return host.startswith(("127.", "10.", "192.168.")) or re.match(r"^172\.(1[6-9]|2\d|3[01])\.", host) is not None


def _schema_name(schema: dict[str, Any]) -> str:
    name = _NAME_CHARS.sub("_", str(schema.get("title") or "response")).strip("_")
    return (name or "response")[:64]


class OpenAIProvider:
    """The ``openai`` provider: Chat Completions over plain HTTP."""

    name = "openai"

    def __init__(self, config: ProviderConfig):
        self.model = config.model or DEFAULT_MODEL
        self.base_url = normalize_base_url(config.base_url)
        self._url = self.base_url + "/chat/completions"
        self._official = _is_official(self.base_url)
        self._timeout_s = float(config.timeout_s)
        self._key_env = config.api_key_env or DEFAULT_KEY_ENV
        # The OpenAI API always needs a key, and so does any server for which the user named a key
        # variable. A self-hosted server usually needs none. OPENAI_API_KEY itself is sent only to
        # OpenAI and to local servers: a third-party host gets a key only through api_key_env.
        key = None
        if config.api_key_env is not None or self._official or _is_local(self.base_url):
            key = read_key(
                (self._key_env,), provider="openai", required=self._official or config.api_key_env is not None
            )
        self._sent_key = key is not None
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"fountain/{__version__}",
        }
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        self.sampling = config.sampling  # defaults for requests that leave a parameter unset
        self._max_tokens_field = "max_completion_tokens" if self._official else "max_tokens"
        # The transport's default headers are the only place the key lives.
        # The OpenAI API does not queue; a self-hosted server may (see fountain.providers.pacing).
        self.pacing = ServerPacing(self._timeout_s, adaptive=not self._official)
        self._transport = make_transport(
            self._url,
            timeout_s=self._timeout_s * (CEILING_FACTOR if not self._official else 1.0),
            headers=headers,
            max_connections=int(config.extra.get("max_connections", 1024)),
        )
        forced = config.extra.get("structured_output") or "auto"
        if forced not in FORCED:
            raise BadRequestError(
                f"unknown structured_output {forced!r}",
                location="--structured-output",
                hint="one of auto, json_schema, json_object, none",
            )
        self._level, self._lowest = FORCED[forced]
        self.forced = forced != "auto"
        self._formats: dict[int, tuple[dict[str, Any], list[dict[str, Any] | None]]] = {}

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url}

    @property
    def structured_output(self) -> str:
        """The structured-output form in use now (after any fallback)."""
        return LEVELS[self._level]

    # --- request building ------------------------------------------------------------------------

    def _response_formats(self, schema: dict[str, Any]) -> list[dict[str, Any] | None]:
        # Built once per schema object (the engine reuses one schema for a whole run).
        cached = self._formats.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        name = _schema_name(schema)
        formats: list[dict[str, Any] | None] = [
            {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}},
            {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
            # llama-cpp-python constrains its grammar with this schema; others ignore the key.
            {"type": "json_object", "schema": schema},
            {"type": "json_object"},
            None,
        ]
        if len(self._formats) > 64:
            self._formats.clear()
        self._formats[id(schema)] = (schema, formats)
        return formats

    def _body(self, request: Request, level: int) -> bytes:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        sampling = merged_sampling(self.sampling, request.sampling)
        if "max_tokens" in sampling:
            payload[self._max_tokens_field] = sampling.pop("max_tokens")
        payload.update(sampling)
        seed = combined_seed(request)
        if seed is not None:
            payload["seed"] = seed
        if request.schema is not None:
            response_format = self._response_formats(request.schema)[level]
            if response_format is not None:
                payload["response_format"] = response_format
        return dumps_bytes(payload)

    # --- the call ----------------------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        """One attempt (plus an immediate resend if the server refuses the output format)."""
        level = self._level
        while True:
            status, headers, raw = await self._post(self._body(request, level))
            if status == 200:
                return self._parse(raw, request, level)
            message, code = _error_message(raw)
            if request.schema is not None and refuses_format(status, message):
                if level >= self._lowest:
                    raise self._format_error(status, message, level)
                level += 1
                # Remember the weaker form; concurrent requests may already have gone further.
                self._level = max(self._level, level)
                level = self._level
                continue
            raise self._error(status, headers, message, code)

    def _format_error(self, status: int, message: str | None, level: int) -> ProviderError:
        said = f": {message[:300]}" if message else ""
        if self.forced:
            hint = "this server does not take the form --structured-output names; try another, or leave it out"
        else:
            hint = "the server refused every form of structured output; try --mode turns"
        return BadRequestError(
            f"{self.base_url} refused response_format {LEVELS[level]} ({status}){said}", status=status, hint=hint
        )

    async def _post(self, body: bytes) -> tuple[int, Any, bytes]:
        pacing = self.pacing
        async with pacing.slot() as timeout_s:
            started = time.monotonic()
            try:
                if _timeout is not None:  # Python 3.11+: no task of its own per request
                    async with _timeout(timeout_s):
                        answer = await self._transport.post(self._url, body)
                else:
                    answer = await asyncio.wait_for(self._transport.post(self._url, body), timeout_s)
            except (TransportTimeout, asyncio.TimeoutError) as error:
                slow_not_dead = pacing.can_wait_longer
                pacing.timed_out(started)
                extra = f"; slowing down: {pacing.describe()}" if pacing.adaptive else ""
                if slow_not_dead:
                    # A server that answers, slowly, is flow control (as a 429), not a failure: it
                    # does not count towards the error-rate stop; the retry waits here.
                    raise ServerBusyError(
                        f"openai: no answer from {self.base_url} within {timeout_s:g}s (busy){extra}",
                        hint="the server queues requests; fountain sends fewer and waits longer",
                    ) from None
                raise transient(
                    "openai",
                    f"no answer from {self.base_url} within {timeout_s:g}s{extra}",
                    error if isinstance(error, TransportTimeout) else None,
                ) from None
            except BadURL:
                # Not temporary: retrying a URL the client cannot use only delays the error.
                raise ProviderError(
                    f"openai: {self._url} is not a usable http(s) URL",
                    hint="give the server's URL with its scheme, e.g. --base-url http://localhost:8000/v1",
                ) from None
            except TransportError as error:
                raise transient("openai", f"connection to {self.base_url} failed", error) from None
            pacing.answered(started)
            return answer

    def _parse(self, raw: bytes, request: Request, level: int) -> Completion:
        # Every check of the answer's shape and values lives in answers.py (the one boundary).
        answer = parse_body(raw, "openai")
        try:
            choice = answer["choices"][0]
            message = choice.get("message") or {}
            content = message.get("content")
            finish_reason = choice.get("finish_reason")
            refusal = message.get("refusal")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedAnswerError(
                "openai", "bad_shape", f"unexpected answer shape from {self.base_url}: {raw[:120]!r}"
            ) from None
        text = content_text(content, "openai")
        if content is None and refusal:
            text, finish_reason = content_text(refusal, "openai"), "refusal"
        data = None
        if request.schema is not None or LEVELS[level].startswith("json_object"):
            data = parse_data(text)  # None: validation extracts JSON from prose and reports what failed
        usage = answer.get("usage")
        model = answer.get("model")
        return Completion(
            text=text,
            data=data,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            usage=usage_of(usage),
            model=model[:200] if isinstance(model, str) and model else self.model,
        )

    def _error(self, status: int, headers: Any, message: str | None, code: str | None) -> ProviderError:
        said = f": {message}" if message else ""
        if status in (401, 403):
            if not self._sent_key:
                return AuthenticationError(
                    f"the server at {self.base_url} wants an API key ({status}){said}",
                    status=status,
                    hint="name the variable that holds its key with model.api_key_env in setup.yaml "
                    "(OPENAI_API_KEY is sent only to api.openai.com and local servers)",
                )
            return AuthenticationError(
                f"the key in {self._key_env} was refused ({status}){said}",
                status=status,
                hint=f"check the value of {self._key_env}",
            )
        if status == 404:
            return ModelNotFoundError(
                f"model {self.model!r} was not found at {self.base_url} (404){said}",
                status=status,
                hint="check the model name (--model); for a local server, check that the base URL "
                "ends with /v1 and that the model is loaded",
            )
        if status == 429:
            if code is not None and "insufficient_quota" in code:
                return QuotaExceededError(
                    f"the OpenAI account's quota is exhausted{said}",
                    status=status,
                    hint="check the plan and billing details; retrying will not help",
                )
            return RateLimitError(
                f"rate limited by {self.base_url} (429){said}",
                status=status,
                retry_after=retry_after_from_headers(headers),
                hint="the engine slows down and retries",
            )
        if status in (408, 409) or status >= 500:
            return transient("openai", f"server error {status} from {self.base_url}{said}", status=status)
        return BadRequestError(
            f"{self.base_url} rejected the request ({status}){said}",
            status=status,
            hint="check the model settings (sampling, max_tokens) in setup.yaml",
        )

    async def aclose(self) -> None:
        await self._transport.aclose()


def _error_message(raw: bytes) -> tuple[str | None, str | None]:
    """(message, code) from an error body in OpenAI's, vLLM's or Ollama's shape; the message with
    secrets redacted and control characters escaped (a server may echo the key, or send escapes)."""
    message, code = _raw_error_message(raw)
    return (safe_text(message) if message else message), code


def _raw_error_message(raw: bytes) -> tuple[str | None, str | None]:
    try:
        body = loads(raw)  # fastjson: deep nesting is a ValueError, not a RecursionError
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return (text[:300] or None), None
    if not isinstance(body, dict):
        return str(body)[:300], None
    error = body.get("error", body)
    if isinstance(error, str):
        return error[:500], None
    if isinstance(error, dict):
        # code and type both: OpenAI marks an exhausted quota in either
        code = " ".join(str(error[k]) for k in ("code", "type") if error.get(k) is not None)
        message = error.get("message")
        return (str(message)[:500] if message else None), (code or None)
    return None, None
