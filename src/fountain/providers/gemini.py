"""Google Gemini through the ``google-genai`` SDK (``pip install 'fountain[gemini]'``).

``google-generativeai`` is deprecated upstream; this is the maintained SDK. Structured output:
``response_mime_type="application/json"`` with the request's schema as ``response_json_schema``
(full JSON Schema, SDKs from 1.2x on); an SDK without that field gets ``response_schema`` with the
keywords Gemini's OpenAPI subset rejects (``additionalProperties``, ``$schema``, ...) stripped.
The SDK's retries are off (its default): the engine retries.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    MissingDependencyError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
)
from fountain.providers.answers import content_text, parse_data, token_count
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.http import (
    combined_seed,
    merged_sampling,
    parse_duration,
    read_key,
    retry_after_from_headers,
    transient,
)
from fountain.safety import safe_text
from fountain.types import Usage

if TYPE_CHECKING:  # pragma: no cover
    from google.genai.types import ContentDict

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

# What Gemini's OpenAPI-style ``response_schema`` accepts; everything else is dropped.
_OPENAPI_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "anyOf",
        "propertyOrdering",
        "title",
        "minProperties",
        "maxProperties",
        "pattern",
        "example",
        "default",
    }
)


def openapi_schema(schema: Any) -> Any:
    """A JSON schema reduced to the subset Gemini's ``response_schema`` accepts."""
    if isinstance(schema, list):
        return [openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _OPENAPI_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: openapi_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = openapi_schema(value)
        elif key == "type" and isinstance(value, list):  # ["string", "null"] -> nullable string
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        else:
            out[key] = value
    return out


class GeminiProvider:
    """The ``gemini`` provider."""

    name = "gemini"

    def __init__(self, config: ProviderConfig):
        try:
            from google import genai
            from google.genai import errors, types
        except ImportError:
            raise MissingDependencyError(
                "the gemini provider needs the 'google-genai' package, which is not installed",
                hint="pip install 'fountain[gemini]'",
            ) from None
        self._errors = errors
        self._types = types
        self.model = config.model or DEFAULT_MODEL
        self._key_envs = (config.api_key_env,) if config.api_key_env else DEFAULT_KEY_ENVS
        key = read_key(self._key_envs, provider="gemini")
        self.base_url = (config.base_url or "https://generativelanguage.googleapis.com").rstrip("/")
        self._timeout_s = float(config.timeout_s)
        options: dict[str, Any] = {"timeout": int(self._timeout_s * 1000)}
        if config.base_url:
            options["base_url"] = self.base_url
        if config.extra.get("api_version"):
            options["api_version"] = str(config.extra["api_version"])
        # vertexai=False: a GOOGLE_GENAI_USE_VERTEXAI in the environment must not reroute the key.
        self._client = genai.Client(api_key=key, vertexai=False, http_options=types.HttpOptions(**options))
        self.sampling = config.sampling  # defaults for requests that leave a parameter unset
        fields = getattr(types.GenerateContentConfig, "model_fields", {})
        self._json_schema = (
            "response_json_schema" in fields and config.extra.get("schema_mode", "json_schema") == "json_schema"
        )
        self._schemas: dict[int, tuple[dict[str, Any], Any]] = {}

    def __repr__(self) -> str:
        return f"GeminiProvider(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": self.base_url}

    def _schema(self, schema: dict[str, Any]) -> Any:
        if self._json_schema:
            return schema
        cached = self._schemas.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        converted = openapi_schema(schema)
        if len(self._schemas) > 64:
            self._schemas.clear()
        self._schemas[id(schema)] = (schema, converted)
        return converted

    def _config(self, request: Request) -> dict[str, Any]:
        config: dict[str, Any] = {}
        sampling = merged_sampling(self.sampling, request.sampling)
        if "max_tokens" in sampling:
            config["max_output_tokens"] = sampling.pop("max_tokens")
        config.update(sampling)
        seed = combined_seed(request)
        if seed is not None:
            config["seed"] = seed
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        if system:
            config["system_instruction"] = system
        if request.schema is not None:
            config["response_mime_type"] = "application/json"
            key = "response_json_schema" if self._json_schema else "response_schema"
            config[key] = self._schema(request.schema)
        return config

    async def complete(self, request: Request) -> Completion:
        """One attempt; SDK and transport errors become fountain errors."""
        contents: list[ContentDict] = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in request.messages
            if m.role != "system"
        ]
        try:
            response = await self._client.aio.models.generate_content(
                model=self.model,
                contents=contents,
                # a plain dict, as the SDK accepts; its GenerateContentConfigDict cannot take computed keys
                config=self._config(request),  # type: ignore[arg-type]
            )
        except self._errors.APIError as error:
            raise self._error(error) from None
        except (asyncio.TimeoutError, TimeoutError):
            raise transient("gemini", f"no answer from {self.base_url} within {self._timeout_s:g}s") from None
        except ValueError as error:  # a 200 whose body is not JSON (UnknownApiResponseError)
            raise transient("gemini", f"malformed answer from {self.base_url}", error) from None
        except Exception as error:
            # aiohttp / httpx2 transport failures; anything else is a bug and propagates
            if type(error).__module__.split(".")[0] in ("aiohttp", "httpx", "httpx2", "httpcore2"):
                raise transient("gemini", f"connection to {self.base_url} failed", error) from None
            raise
        return self._parse(response, request)

    def _parse(self, response: Any, request: Request) -> Completion:
        candidates = getattr(response, "candidates", None) or []
        text, finish = "", None
        if candidates:
            candidate = candidates[0]
            parts = getattr(getattr(candidate, "content", None), "parts", None) or []
            # thought parts (thinking models) are not the answer
            text = "".join(
                content_text(p.text, "gemini")
                for p in parts
                if getattr(p, "text", None) and not getattr(p, "thought", False)
            )
            finish = _enum_name(getattr(candidate, "finish_reason", None))
        else:
            feedback = getattr(response, "prompt_feedback", None)
            reason = _enum_name(getattr(feedback, "block_reason", None))
            finish = f"blocked:{reason}" if reason else "no_candidates"
        data = None
        if request.schema is not None and text:
            data = parse_data(text)
        meta = getattr(response, "usage_metadata", None)
        prompt_tokens = token_count(getattr(meta, "prompt_token_count", 0))
        # thinking tokens are billed as output
        completion_tokens = token_count(getattr(meta, "candidates_token_count", 0)) + token_count(
            getattr(meta, "thoughts_token_count", 0)
        )
        return Completion(
            text=text,
            data=data,
            finish_reason=finish,
            usage=Usage(prompt_tokens, completion_tokens),
            model=str(getattr(response, "model_version", None) or self.model),
        )

    def _error(self, error: Any) -> ProviderError:
        code = int(getattr(error, "code", 0) or 0)
        message = safe_text(str(getattr(error, "message", None) or ""))  # may echo a key or hold escapes
        status_name = getattr(error, "status", None) or ""
        said = f": {message}" if message else ""
        keys = " or ".join(self._key_envs)
        details = getattr(error, "details", None)
        if code in (401, 403) or (
            code == 400
            and ("API_KEY_INVALID" in json.dumps(details, default=str) or "api key not valid" in message.lower())
        ):
            return AuthenticationError(
                f"the key in {keys} was refused ({code}){said}", status=code, hint=f"check the value of {keys}"
            )
        if code == 404:
            return ModelNotFoundError(
                f"model {self.model!r} was not found ({code}){said}",
                status=code,
                hint="check the model name (--model), e.g. gemini-2.5-flash",
            )
        if code == 429:
            headers = getattr(getattr(error, "response", None), "headers", None)
            retry_after = retry_after_from_headers(headers) or _retry_delay(details)
            return RateLimitError(
                f"rate limited by Gemini (429 {status_name}){said}",
                status=code,
                retry_after=retry_after,
                hint="the engine slows down and retries",
            )
        if code in (408, 409) or code >= 500:
            return transient("gemini", f"server error {code} from {self.base_url}{said}", status=code)
        if code == 402:
            return QuotaExceededError(
                f"the Gemini account cannot pay for this request{said}",
                status=code,
                hint="check the plan and billing details",
            )
        return BadRequestError(
            f"Gemini rejected the request ({code} {status_name}){said}",
            status=code,
            hint="check the model settings (sampling, max_tokens) in setup.yaml",
        )

    async def aclose(self) -> None:
        close = getattr(self._client.aio, "aclose", None)
        if close is not None:
            await close()


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", None) or getattr(value, "name", None) or value)


def _retry_delay(details: Any) -> float | None:
    """``retryDelay`` of a google.rpc.RetryInfo in an error body, in seconds."""
    if isinstance(details, dict):
        details = (details.get("error") or details).get("details")
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            return parse_duration(item.get("retryDelay"))
    return None
