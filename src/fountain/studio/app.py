"""The studio's ASGI app: the page, its static files, and the JSON API of each page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fountain.studio import review, runs, spec
from fountain.studio.security import Guard
from fountain.studio.state import Studio

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    # Everything the page uses is served by the studio itself: no CDN, no inline script.
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


async def index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def folders(request: Request) -> JSONResponse:
    studio: Studio = request.app.state.studio
    return JSONResponse(
        [{"index": i, "name": folder.name, "path": str(folder)} for i, folder in enumerate(studio.folders)]
    )


def create_app(folder_paths: list[str | Path], *, token: str, host: str = "127.0.0.1") -> Any:
    """The studio over ``folder_paths`` (spec folders), guarded for a server bound to ``host``."""
    studio = Studio([Path(p) for p in folder_paths])
    base = "/api/folders/{index}"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        studio.runs.close()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/folders", folders),
            Route(base + "/spec", spec.read_files),
            Route(base + "/check", spec.check_texts, methods=["POST"]),
            Route(base + "/save", spec.save, methods=["POST"]),
            Route(base + "/run", runs.status),
            Route(base + "/run/start", runs.start, methods=["POST"]),
            Route(base + "/run/stop", runs.stop, methods=["POST"]),
            Route(base + "/run/resume", runs.resume, methods=["POST"]),
            Route(base + "/run/events", runs.events),
            Route(base + "/records", review.list_records),
            Route(base + "/records/{sample_id}", review.show_record),
            Route(base + "/review", review.decide, methods=["POST"]),
            Route(base + "/report", review.build_report, methods=["POST"]),
            Route(base + "/files/{path:path}", review.folder_file),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.studio = studio
    guarded = Guard(app, token=token, bind_host=host)
    guarded.studio = studio  # the server sets studio.closing when it is asked to stop
    return guarded
