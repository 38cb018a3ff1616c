"""Anthropic Messages API through the official ``anthropic`` SDK (``pip install 'fountain[anthropic]'``).

Structured output: the request's JSON schema becomes the ``input_schema`` of one tool and
``tool_choice`` forces the model to call it; the tool's input is the answer (``data``), and its JSON
the ``text``. The SDK's own retries are off (``max_retries=0``): the engine retries, honouring
``Retry-After``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    MissingDependencyError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
)
from fountain.providers.answers import MalformedAnswerError, content_text, depth_exceeds, parse_data, usage_of
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.http import (
    merged_sampling,
    read_key,
    retry_after_from_headers,
    transient,
)
from fountain.safety import safe_text

DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
# Anthropic requires max_tokens; used when neither the spec nor the request sets one.
DEFAULT_MAX_TOKENS = 4096
_TOOL_DESCRIPTION = "Record the answer as structured data that matches the input schema exactly."
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def _tool_name(schema: dict[str, Any]) -> str:
    name = _NAME_CHARS.sub("_", str(schema.get("title") or "")).strip("_").lower()
    return f"record_{name}"[:64] if name else "record_answer"


class AnthropicProvider:
    """The ``anthropic`` provider."""

    name = "anthropic"

    def __init__(self, config: ProviderConfig):
        try:
            import anthropic
        except ImportError:
            raise MissingDependencyError(
                "the anthropic provider needs the 'anthropic' package, which is not installed",
                hint="pip install 'fountain[anthropic]'",
            ) from None
        self._sdk = anthropic
        self.model = config.model or DEFAULT_MODEL
        self._key_env = config.api_key_env or DEFAULT_KEY_ENV
        key = read_key((self._key_env,), provider="anthropic")
        self.base_url = (config.base_url or "https://api.anthropic.com").rstrip("/")
        self._timeout_s = float(config.timeout_s)
        self._client = anthropic.AsyncAnthropic(
            api_key=key, base_url=self.base_url, timeout=self._timeout_s, max_retries=0
        )
        self.sampling = config.sampling  # defaults for requests that leave a parameter unset
        # anthropic 2.x dropped temperature/top_p from create()'s signature; the API still takes
        # them for the models that support them, so they travel in extra_body there.
        import inspect

        params = inspect.signature(self._client.messages.create).parameters
        self._native_sampling = frozenset(k for k in ("temperature", "top_p") if k in params)
        self._tools: dict[int, tuple[dict[str, Any], dict[str, Any], bool]] = {}

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url}

    def _tool(self, schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The tool for a schema (cached per schema object) and whether its input is wrapped."""
        cached = self._tools.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1], cached[2]
        # A tool's input must be an object: wrap any other schema in {"value": ...}.
        wrapped = schema.get("type", "object") != "object"
        input_schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]} if wrapped else schema
        tool = {"name": _tool_name(schema), "description": _TOOL_DESCRIPTION, "input_schema": input_schema}
        if len(self._tools) > 64:
            self._tools.clear()
        self._tools[id(schema)] = (schema, tool, wrapped)
        return tool, wrapped

    async def complete(self, request: Request) -> Completion:
        """One attempt; SDK errors become fountain errors."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
        }
        sampling = merged_sampling(self.sampling, request.sampling)
        kwargs["max_tokens"] = sampling.pop("max_tokens", DEFAULT_MAX_TOKENS)
        extra = {k: sampling.pop(k) for k in list(sampling) if k not in self._native_sampling}
        kwargs.update(sampling)
        if extra:
            kwargs["extra_body"] = extra
        if system:
            kwargs["system"] = system
        wrapped = False
        if request.schema is not None:
            tool, wrapped = self._tool(request.schema)
            kwargs["tools"] = [tool]
            kwargs["tool_choice"] = {"type": "tool", "name": tool["name"]}
        try:
            message = await self._client.messages.create(**kwargs)
        except self._sdk.APIError as error:
            raise self._error(error) from None
        except ValueError as error:  # a 200 whose body is not JSON
            raise transient("anthropic", f"malformed answer from {self.base_url}", error) from None
        return self._parse(message, request, wrapped)

    def _parse(self, message: Any, request: Request, wrapped: bool) -> Completion:
        data: Any = None
        texts: list[str] = []
        tool_used = False
        for block in message.content or ():
            kind = getattr(block, "type", None)
            if kind == "tool_use" and request.schema is not None and not tool_used:
                data = block.input
                if wrapped and isinstance(data, dict):
                    data = data.get("value")
                tool_used = True
            elif kind == "text":
                texts.append(content_text(getattr(block, "text", None), "anthropic"))
        if tool_used:
            text = json.dumps(data, ensure_ascii=False)
        else:
            text = "".join(texts)
            if request.schema is not None:
                data = parse_data(text)
        if tool_used and depth_exceeds(data):
            raise MalformedAnswerError("anthropic", "too_deep", "tool input nests too deeply")
        return Completion(
            text=text,
            data=data,
            finish_reason=getattr(message, "stop_reason", None),
            usage=usage_of(getattr(message, "usage", None), "input_tokens", "output_tokens"),
            model=str(getattr(message, "model", None) or self.model),
        )

    def _error(self, error: Exception) -> ProviderError:
        sdk = self._sdk
        if isinstance(error, sdk.APITimeoutError):
            return transient("anthropic", f"no answer from {self.base_url} within {self._timeout_s:g}s")
        if isinstance(error, sdk.APIConnectionError):
            return transient("anthropic", f"connection to {self.base_url} failed", error)
        if not isinstance(error, sdk.APIStatusError):
            # e.g. APIResponseValidationError: the answer did not have the expected shape
            return transient("anthropic", f"unexpected answer from {self.base_url}", error)
        status = error.status_code
        api_message = getattr(error, "api_message", None) or _body_message(error.body)
        # A server may echo the key or send escape sequences: redacted and escaped here already.
        said = f": {safe_text(str(api_message))}" if api_message else ""
        if status in (401, 403):
            return AuthenticationError(
                f"the key in {self._key_env} was refused ({status}){said}",
                status=status,
                hint=f"check the value of {self._key_env}",
            )
        if status == 404:
            return ModelNotFoundError(
                f"model {self.model!r} was not found ({status}){said}",
                status=status,
                hint="check the model name (--model), e.g. claude-haiku-4-5",
            )
        if status == 429:
            return RateLimitError(
                f"rate limited by Anthropic (429){said}",
                status=status,
                retry_after=retry_after_from_headers(error.response.headers),
                hint="the engine slows down and retries",
            )
        if status == 402 or (status == 400 and "credit balance" in (api_message or "").lower()):
            return QuotaExceededError(
                f"the Anthropic account cannot pay for this request{said}",
                status=status,
                hint="check the plan and billing details",
            )
        if status in (408, 409) or status >= 500:  # 529: overloaded
            return transient("anthropic", f"server error {status} from {self.base_url}{said}", status=status)
        return BadRequestError(
            f"Anthropic rejected the request ({status}){said}",
            status=status,
            hint="check the model settings (sampling, max_tokens) in setup.yaml",
        )

    async def aclose(self) -> None:
        await self._client.close()


def _body_message(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return None
