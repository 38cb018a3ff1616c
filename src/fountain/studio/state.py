"""What the studio's pages share: the opened folders, JSON bodies and error responses."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fountain.errors import FountainError
from fountain.studio.security import OutsideFolder

MAX_BODY = 8_000_000  # bytes of one JSON request


class Studio:
    """The spec folders the studio was opened on (by position) and their runs."""

    def __init__(self, folders: list[Path]) -> None:
        from fountain.studio.runs import RunManager

        self.folders = [Path(f).resolve() for f in folders]
        self.runs = RunManager()
        self.closing = threading.Event()  # set when the server is asked to stop: streams end

    def folder(self, index: Any) -> Path:
        """The opened folder number ``index``; a FountainError for any other value."""
        try:
            position = int(index)
        except (TypeError, ValueError):
            position = -1
        if not 0 <= position < len(self.folders):
            raise FountainError(f"no opened folder number {index!r}", location="folder")
        return self.folders[position]

    def output(self, index: Any) -> Path:
        """The output folder of a run of folder ``index`` (``<folder>/output``: inside it)."""
        return self.folder(index) / "output"


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body; a FountainError when it is not one."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise FountainError("the request is too large", location="body")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise FountainError("the request body is not JSON", location="body") from None
    if not isinstance(data, dict):
        raise FountainError("the request body must be a JSON object", location="body")
    return data


def error_response(error: Exception) -> JSONResponse:
    """A FountainError (or a file error) as ``{"error", "location", "hint"}`` with a fitting status."""
    if isinstance(error, FountainError):
        status = 403 if isinstance(error, OutsideFolder) else 400
        return JSONResponse(
            {"error": error.message, "location": error.location, "hint": error.hint}, status_code=status
        )
    if isinstance(error, FileNotFoundError):
        return JSONResponse({"error": "no such file"}, status_code=404)
    if isinstance(error, OSError):
        return JSONResponse({"error": error.strerror or str(error)}, status_code=500)
    return JSONResponse({"error": str(error)}, status_code=400)
