"""HTTP transports for the adapters that speak JSON over HTTP themselves (``openai``).

One small interface, two clients:

- ``pyreqwest`` (Rust's reqwest and hyper): connections, HTTP parsing and the socket work run on
  a Tokio thread outside the GIL, so the event-loop thread, which also validates answers and
  writes journals and the cache, spends about a third less CPU per request than with aiohttp. At
  a few thousand requests a second (a self-hosted server at high concurrency) that thread is what
  limits a run. It needs Python 3.11 or later.
- ``aiohttp``: pure asyncio, the fallback, and the client for ``https://`` URLs by default, so
  remote APIs keep Python's ``ssl`` trust store (and ``SSL_CERT_FILE``) exactly as before.

``FOUNTAIN_HTTP_CLIENT`` chooses: ``auto`` (default: pyreqwest for ``http://`` URLs when it is
installed, aiohttp otherwise), ``pyreqwest`` (every URL) or ``aiohttp`` (every URL). Neither
client reads proxy settings from the environment: both connect directly.

A transport raises :class:`TransportTimeout`, :class:`TransportFailure` or :class:`BadURL`; the
adapter words them for the user. Nothing here ever puts a header value (the API key) into a
message.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from fountain.errors import MissingDependencyError, ProviderError

ENV_VAR = "FOUNTAIN_HTTP_CLIENT"
CHOICES = ("auto", "pyreqwest", "aiohttp")


class TransportError(Exception):
    """A request that got no HTTP answer; ``str()`` is a short, secret-free description."""


class TransportTimeout(TransportError):
    """No complete answer within the timeout."""


class TransportFailure(TransportError):
    """Connecting, sending or reading failed (refused, reset, DNS...): worth retrying."""


class BadURL(TransportError):
    """A URL the client cannot use at all: retrying cannot help."""


class Transport(Protocol):
    name: str

    async def post(self, url: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        """POST ``body`` (JSON bytes) to ``url``; the status, the headers and the whole body."""

    async def aclose(self) -> None:
        """Close the connections of the current event loop's client."""


def describe(error: BaseException) -> str:
    """A short, secret-free description of a transport exception: ``Name: text``. A
    :class:`TransportError` already reads so (its text names the client's exception)."""
    text = str(error).strip()
    if isinstance(error, TransportError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AiohttpTransport:
    """One keep-alive ``aiohttp.ClientSession`` per event loop."""

    name = "aiohttp"

    def __init__(self, *, timeout_s: float, max_connections: int, headers: Mapping[str, str]):
        self._timeout_s = timeout_s
        self._limit = max_connections
        self.headers = dict(headers)
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s, sock_connect=min(self._timeout_s, 30.0)),
                # The session is ours alone: no cookies, no raising on error statuses.
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
            self._loop = loop
        return self._session

    async def post(self, url: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        import aiohttp

        session = self._session_for_loop()
        try:
            async with session.post(url, data=body) as response:
                return response.status, response.headers, await response.read()
        except asyncio.TimeoutError as error:
            raise TransportTimeout(describe(error)) from None
        except (aiohttp.InvalidURL, getattr(aiohttp, "NonHttpUrlClientError", aiohttp.InvalidURL)) as error:
            raise BadURL(describe(error)) from None
        except aiohttp.ClientError as error:
            raise TransportFailure(describe(error)) from None

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


class ReqwestTransport:
    """One ``pyreqwest`` client per event loop (its Tokio runtime does the HTTP work)."""

    name = "pyreqwest"

    def __init__(self, *, timeout_s: float, max_connections: int, headers: Mapping[str, str]):
        from pyreqwest import exceptions

        self._errors = exceptions
        self._timeout_s = timeout_s
        self._limit = max_connections
        self.headers = dict(headers)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _client_for_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from datetime import timedelta

            from pyreqwest.client import ClientBuilder

            builder = (
                ClientBuilder()
                .max_connections(self._limit)
                .timeout(timedelta(seconds=self._timeout_s))
                .connect_timeout(timedelta(seconds=min(self._timeout_s, 30.0)))
                .pool_idle_timeout(timedelta(seconds=60))
                .no_proxy()  # as the aiohttp session: direct connections only
                .default_headers(self.headers)
            )
            self._client = await builder.build().__aenter__()
            self._loop = loop
        return self._client

    async def post(self, url: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        errors = self._errors
        client = await self._client_for_loop()
        try:
            response = await client.post(url).body_bytes(body).build().send()
            return response.status, response.headers, bytes(await response.bytes())
        except errors.RequestTimeoutError as error:
            raise TransportTimeout(_describe_reqwest(error)) from None
        except errors.BuilderError as error:
            raise BadURL(_describe_reqwest(error)) from None
        except errors.RequestError as error:
            raise TransportFailure(_describe_reqwest(error)) from None
        except ValueError as error:  # a URL reqwest cannot parse
            raise BadURL(describe(error)) from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()


def _describe_reqwest(error: BaseException) -> str:
    """``ConnectError: connection error (tcp connect error; Connection refused)``: pyreqwest's
    message and the innermost causes it reports, without the URL-bearing outer ones."""
    message = getattr(error, "message", None) or str(error)
    details = getattr(error, "details", None) or {}
    causes = [str(c.get("message", "")) for c in (details.get("causes") or []) if isinstance(c, dict)]
    inner = [c for c in causes if c and "for url" not in c][-2:]
    return f"{type(error).__name__}: {message}" + (f" ({'; '.join(inner)})" if inner else "")


def _pyreqwest_available() -> bool:
    try:
        import pyreqwest.client  # noqa: F401
    except ImportError:
        return False
    return True


def chosen_client(url: str, choice: str | None = None) -> str:
    """``"pyreqwest"`` or ``"aiohttp"`` for ``url`` under ``choice`` (default: the environment)."""
    choice = (choice if choice is not None else os.environ.get(ENV_VAR, "auto")).strip().lower() or "auto"
    if choice not in CHOICES:
        raise ProviderError(
            f"{ENV_VAR}={choice!r} is not a known HTTP client",
            hint=f"one of {', '.join(CHOICES)} (auto: pyreqwest for http:// URLs when installed, aiohttp otherwise)",
        )
    if choice == "aiohttp":
        return "aiohttp"
    if choice == "pyreqwest":
        if not _pyreqwest_available():
            raise MissingDependencyError(
                f"{ENV_VAR}=pyreqwest, but pyreqwest is not installed",
                hint=f"pip install pyreqwest (Python 3.11 or later), or unset {ENV_VAR} to use aiohttp",
            )
        return "pyreqwest"
    if urlsplit(url).scheme.lower() == "http" and _pyreqwest_available():
        return "pyreqwest"
    return "aiohttp"


def make_transport(
    url: str, *, timeout_s: float, max_connections: int, headers: Mapping[str, str], choice: str | None = None
) -> Transport:
    """The transport for requests to ``url`` (see the module docstring for the choice)."""
    cls = ReqwestTransport if chosen_client(url, choice) == "pyreqwest" else AiohttpTransport
    return cls(timeout_s=timeout_s, max_connections=max_connections, headers=headers)
