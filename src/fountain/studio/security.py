"""The studio's rules for every request.

- Host: only the names the server was bound to (loopback names by default) are answered, so a
  web page cannot reach the studio through DNS rebinding.
- Token: bound to any other interface, every request needs the token (``X-Fountain-Token``
  header, the ``fountain_studio_token`` cookie, or ``?token=`` once, which sets the cookie).
- State changes (POST and the like) need the token in the header, or an ``Origin`` that is the
  studio itself (a cross-site form or fetch is refused: CSRF).
- Files: :func:`inside` resolves a path (symlinks too) and refuses anything outside its folder.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fountain.errors import FountainError

TOKEN_ENV = "FOUNTAIN_STUDIO_TOKEN"
TOKEN_HEADER = "x-fountain-token"
TOKEN_COOKIE = "fountain_studio_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class OutsideFolder(FountainError):
    """A path that resolves outside the folder it must stay in."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only listens on this machine."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative`` resolved (symlinks followed); :class:`OutsideFolder` when that is not
    inside ``folder`` (``..``, an absolute path, a symlink pointing out)."""
    root = folder.resolve()
    if not relative or "\x00" in relative:
        raise OutsideFolder("no such file", location=relative or "(empty path)")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise OutsideFolder(
            "refused: the path leads outside the opened spec folder",
            location=relative,
            hint="the studio only reads and writes files inside the folders it was opened on",
        )
    return candidate


def _host_name(host_header: str) -> str:
    """The name of a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower() if "]" in host_header else ""
    return host_header.rsplit(":", 1)[0].lower() if host_header.count(":") == 1 else host_header.lower()


class Guard:
    """ASGI middleware applying the rules above before the app sees a request."""

    def __init__(self, app: Any, *, token: str, bind_host: str) -> None:
        self.app = app
        self.studio: Any = None
        self.token = token
        self.require_token = not is_loopback(bind_host)
        # Bound to every interface (0.0.0.0, ::), any name may reach it: the token guards it.
        self.allowed_hosts: frozenset[str] | None = (
            LOOPBACK_NAMES
            if is_loopback(bind_host)
            else None
            if _unspecified(bind_host)
            else frozenset({bind_host.strip("[]").lower()})
        )

    def _token_ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(str(candidate).encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _host_name(host) not in self.allowed_hosts:
            await _refuse(send, 421, "this studio does not answer to that host name")
            return
        header_token = headers.get(TOKEN_HEADER)
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header counts as none
            cookie = SimpleCookie()
        cookie_token = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None
        query_token = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [None])[0]
        authorised = any(self._token_ok(t) for t in (header_token, cookie_token, query_token))
        if self.require_token and not authorised:
            await _refuse(send, 401, "a token is needed: open the URL fountain studio printed")
            return
        method = scope.get("method", "GET").upper()
        if method not in SAFE_METHODS and not self._token_ok(header_token):
            origin = headers.get("origin")
            scheme = scope.get("scheme", "http")
            if origin is None or not _same_origin(origin, f"{scheme}://{host}"):
                await _refuse(send, 403, "refused: a change must come from the studio's own page (same origin)")
                return
        if self._token_ok(query_token) and not self._token_ok(cookie_token):
            send = _setting_cookie(send, self.token)
        await self.app(scope, receive, send)


def _same_origin(origin: str, own: str) -> bool:
    a, b = urlsplit(origin.lower()), urlsplit(own.lower())
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _setting_cookie(send: Send, token: str) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            value = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            message = dict(message)
            message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode("latin-1"))]
        await send(message)

    return wrapped


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
