"""The edge service's HTTP routes (Starlette):

- ``GET /health``: liveness, no authentication, says nothing else;
- ``GET /info``: the embedder (name, dimension), sigma, delta and the limits;
- ``GET /ledger``: the privacy spent so far and the votes left;
- ``POST /vote``: a :mod:`~fountain.edge.votes` request, answered with the noisy histograms.

Every route but /health needs ``Authorization: Bearer <token>`` when the service has a token
(compared in constant time). Bad input gets a 4xx JSON ``{"error": ...}`` that quotes no text;
a vote over budget gets 409. No route ever returns private text or the number of private records.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fountain.edge.votes import BadVote, VoteBox
from fountain.errors import PrivacyBudgetError

log = logging.getLogger("fountain.edge")
ROUTES_TEXT = "GET /health, /info, /ledger; POST /vote"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Routes:
    """The handlers of one edge (one :class:`VoteBox`, one token, one body limit)."""

    def __init__(self, box: VoteBox, token: str | None, max_body_bytes: int, public: dict[str, Any]):
        self.box = box
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.public = public

    def authorised(self, request: Any) -> bool:
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self.token.encode("utf-8"))

    @staticmethod
    def unauthorised() -> Any:
        return _error(
            401,
            "missing or wrong bearer token: set FOUNTAIN_EDGE_TOKEN to the data owner's token",
            {"WWW-Authenticate": "Bearer"},
        )

    async def read_body(self, request: Any) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise BadVote(413, f"the body may hold at most {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadVote(413, f"the body may hold at most {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok"})

    async def info(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return self.unauthorised()
        return JSONResponse({**self.box.info(), **self.public, "edge_id": self.box.ledger.edge_id})

    async def ledger(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return self.unauthorised()
        return JSONResponse(self.box.ledger.to_dict(self.box.sigma))

    async def vote(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        if not self.authorised(request):
            return self.unauthorised()
        box = self.box
        try:
            body = await self.read_body(request)
            try:
                data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise BadVote(400, "the body is not valid JSON (UTF-8)") from None
            ballot = box.parse(data)
            result = await run_in_threadpool(box.vote, ballot)
        except BadVote as bad:
            return _error(bad.status, bad.message)
        except PrivacyBudgetError as refused:
            log.warning(
                "vote refused: budget spent (epsilon %.4g of %.4g)", box.ledger.epsilon, box.ledger.epsilon_budget
            )
            return _error(409, refused.message)
        log.info(
            "vote %d answered: epsilon %.4g of %.4g spent",
            result["vote"],
            box.ledger.epsilon,
            box.ledger.epsilon_budget,
        )
        return JSONResponse(result)


async def _not_found(request: Any, exc: Exception) -> Any:
    return _error(404, f"no such route: {ROUTES_TEXT}")


async def _not_allowed(request: Any, exc: Exception) -> Any:
    return _error(405, f"method not allowed: {ROUTES_TEXT}")


async def _internal(request: Any, exc: Exception) -> Any:
    # Never a traceback, never the request: the exception's type only, for the owner's log.
    log.error("internal error in %s: %s", request.url.path, type(exc).__name__)
    return _error(500, "internal error in the edge service (see its log)")


def create_app(box: VoteBox, *, token: str | None, max_body_bytes: int, public: dict[str, Any] | None = None) -> Any:
    """The ASGI application of one edge over an opened :class:`VoteBox`."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    routes = _Routes(box, token, max_body_bytes, public or {})
    return Starlette(
        routes=[
            Route("/health", routes.health, methods=["GET"]),
            Route("/info", routes.info, methods=["GET"]),
            Route("/ledger", routes.ledger, methods=["GET"]),
            Route("/vote", routes.vote, methods=["POST"]),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed, Exception: _internal},
        debug=False,
    )
