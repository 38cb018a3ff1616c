"""What every batch API adapter offers, and the HTTP they share (aiohttp, the key in headers only)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar

from fountain.errors import AuthenticationError, ProviderError, TransientProviderError
from fountain.providers.base import Completion, Request


@dataclass
class JobStatus:
    """A job at one poll: the provider's state word, whether its results can be read, counts."""

    state: str
    ended: bool
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class LineResult:
    """One result line: an answer, or the reason it has none (``error``)."""

    key: str
    body: Any = None  # the provider's answer object (parsed into a Completion by the adapter)
    error: str | None = None


class BatchAPI(Protocol):
    """One provider's batch API. ``line`` encodes one request; the rest talk to the server."""

    name: str

    def line(self, key: str, request: Request) -> bytes: ...

    def completion(self, body: Any, request: Request) -> Completion: ...

    async def submit(self, job_id: str, lines: list[tuple[str, bytes]]) -> str: ...

    async def find(self, job_id: str) -> str | None: ...

    async def poll(self, remote_id: str) -> JobStatus: ...

    async def results(self, remote_id: str) -> list[LineResult]: ...

    async def cancel(self, remote_id: str) -> None: ...

    async def aclose(self) -> None: ...


_T = TypeVar("_T")
_P = ParamSpec("_P")


def shaped(call: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """An adapter method whose server answer did not have the documented shape raises a
    :class:`ProviderError` (never a traceback): bytes from a server are untrusted input."""

    @functools.wraps(call)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await call(*args, **kwargs)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
            name = getattr(args[0], "name", "the") if args else "the"
            raise TransientProviderError(
                f"{name} batch API: unexpected answer to {call.__name__} ({type(error).__name__}: {error})"[:300],
                hint="check --base-url (does this server implement the batch API?); run the same command "
                "again later: nothing already submitted is sent twice",
            ) from None

    return guarded


class Http:
    """A small aiohttp client: JSON in and out, errors as fountain errors (never the key)."""

    def __init__(self, provider: str, base_url: str, headers: dict[str, str], timeout_s: float = 120.0):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout_s = timeout_s
        self._session: Any = None

    def _client(self) -> Any:
        import aiohttp

        if self._session is None:
            # No total limit (an upload of a 200 MB file takes a while); a silent server still
            # times out between reads.
            timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_read=self._timeout_s)
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
        return self._session

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None) -> bytes:
        import aiohttp

        url = path if path.startswith("http") else self.base_url + path
        try:
            async with self._client().request(method, url, json=json_body, data=data) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientProviderError(
                f"{self.provider} batch API: {method} {url} failed ({type(error).__name__})",
                hint="check the network and --base-url, then run the same command again; "
                "nothing already submitted is sent twice",
            ) from None
        if status < 300:
            return raw
        excerpt = raw[:300].decode("utf-8", "replace")
        if status in (401, 403):
            raise AuthenticationError(
                f"{self.provider} batch API refused the key ({status}): {excerpt}",
                hint="check the API key variable of the provider",
            )
        cls = TransientProviderError if status in (429,) or status >= 500 else ProviderError
        raise cls(
            f"{self.provider} batch API: {method} {url} answered {status}: {excerpt}",
            hint="run the same command again later; requests already submitted are not sent twice"
            if cls is TransientProviderError
            else (
                "does this server implement the batch API? (OpenAI-compatible servers need /files and "
                "/batches; vLLM and llama.cpp servers usually do not: run without --batch)"
                if status == 404
                else "the batch API refused the request; see the message"
            ),
        )

    async def json(self, method: str, path: str, *, json_body: Any = None, data: Any = None) -> Any:
        import json

        raw = await self.request(method, path, json_body=json_body, data=data)
        try:
            return json.loads(raw)
        except ValueError:
            raise TransientProviderError(
                f"{self.provider} batch API: {method} {path} answered something that is not JSON: {raw[:120]!r}"
            ) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def jsonl(raw: bytes) -> list[dict[str, Any]]:
    """The objects of a JSONL text (blank and broken lines skipped)."""
    import json

    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def make_batch_api(provider: Any) -> BatchAPI:
    """The batch adapter for a run's provider (openai, anthropic, gemini); others are refused."""
    from fountain.errors import FountainError

    name = getattr(provider, "name", "")
    if name == "openai":
        from fountain.batch.openai import OpenAIBatch

        return OpenAIBatch(provider)
    if name == "anthropic":
        from fountain.batch.anthropic import AnthropicBatch

        return AnthropicBatch(provider)
    if name == "gemini":
        from fountain.batch.gemini import GeminiBatch

        return GeminiBatch(provider)
    raise FountainError(
        f"--batch works with the openai, anthropic and gemini providers, not {name!r}",
        location="--batch",
        hint="choose one of those with --provider, or run without --batch",
    )
