"""The data page: the records of a run with their provenance (a seed and its derivations, the
direction, the prefix), filters, the hand review (``review.jsonl``, see
:mod:`fountain.run.review`), and the HTML report of ``fountain report``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from fountain.errors import FountainError
from fountain.run.outputs import DERIVATIONS_FILE, REJECTS_FILE, SEEDS_FILE
from fountain.run.review import append_decision, load_review
from fountain.studio.security import inside
from fountain.studio.state import Studio, error_response, read_json

LIST_MAX = 5000  # records listed at once (the filters narrow a bigger run)
REPORT_FILE = "report.html"
REPORT_TIMEOUT_S = 600


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a journal; a torn or damaged line (a run writing now) is skipped."""
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def records(output: Path) -> Iterator[dict[str, Any]]:
    """Every record of the run in ``output``: accepted ones (seeds, derivations), then rejects,
    each as ``{"id", "kind", "direction", "parent_id", "prefix_turns", "reason", ...}``; an
    accepted record has ``messages``, a reject its ``raw`` answer and ``detail``."""
    for name in (SEEDS_FILE, DERIVATIONS_FILE):
        for record in _lines(output / name):
            meta = record.get("metadata") or {}
            yield {
                "id": meta.get("id"),
                "kind": meta.get("kind"),
                "direction": meta.get("direction"),
                "parent_id": meta.get("parent_id"),
                "prefix_turns": meta.get("prefix_turns", 0),
                "persona": meta.get("persona"),
                "reason": None,
                "messages": record.get("messages") or [],
            }
    for record in _lines(output / REJECTS_FILE):
        meta = record.get("metadata") or {}
        yield {
            "id": record.get("id"),
            "kind": record.get("kind"),
            "direction": record.get("direction"),
            "parent_id": meta.get("parent_id"),
            "prefix_turns": meta.get("prefix_turns", 0),
            "persona": meta.get("persona"),
            "reason": str(record.get("reason") or "unknown"),
            "detail": record.get("detail") or "",
            "raw": record.get("raw") or "",
        }


def _text(record: dict[str, Any]) -> str:
    if record["reason"] is None:
        return "\n".join(str(m.get("content", "")) for m in record["messages"] if isinstance(m, dict))
    return f"{record.get('detail', '')}\n{record.get('raw', '')}"


def _preview(record: dict[str, Any]) -> str:
    if record["reason"] is None:
        users = [m for m in record["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        text = str(users[0].get("content", "")) if users else ""
    else:
        text = str(record.get("detail") or record.get("raw") or "")
    return text[:160]


def listing(output: Path, filters: dict[str, str]) -> dict[str, Any]:
    """The records matching ``filters`` (direction, kind, reason — ``accepted`` for the accepted
    ones —, decision, q: text), as summaries, with every value each filter can take."""
    review = load_review(output)
    query = filters.get("q", "").strip().lower()
    facets: dict[str, set[str]] = {"direction": set(), "kind": set(), "reason": set()}
    rows: list[dict[str, Any]] = []
    total = 0
    for record in records(output):
        if not isinstance(record["id"], str):
            continue
        reason = record["reason"] or "accepted"
        decision = review.get(record["id"], "")
        for key, value in (("direction", record["direction"]), ("kind", record["kind"]), ("reason", reason)):
            facets[key].add(str(value))
        wanted = {
            "direction": str(record["direction"]),
            "kind": str(record["kind"]),
            "reason": reason,
            "decision": decision or "none",
        }
        if any(filters.get(key) and filters[key] != value for key, value in wanted.items()):
            continue
        if query and query not in _text(record).lower():
            continue
        total += 1
        if len(rows) < LIST_MAX:
            rows.append(
                {
                    "id": record["id"],
                    "kind": record["kind"],
                    "direction": record["direction"],
                    "parent_id": record["parent_id"],
                    "prefix_turns": record["prefix_turns"],
                    "reason": record["reason"],
                    "decision": decision or None,
                    "preview": _preview(record),
                }
            )
    return {"records": rows, "total": total, "facets": {k: sorted(v) for k, v in facets.items()}}


def find(output: Path, sample_id: str) -> dict[str, Any] | None:
    """The full record ``sample_id`` (the accepted one when a reject shares its id), with its
    review decision."""
    found = None
    for record in records(output):
        if record["id"] == sample_id:
            found = record
            if record["reason"] is None:
                break
    if found is not None:
        found["decision"] = load_review(output).get(sample_id)
    return found


async def list_records(request: Request) -> JSONResponse:
    """GET ?direction=&kind=&reason=&decision=&q=: the matching records."""
    studio: Studio = request.app.state.studio
    try:
        output = studio.output(request.path_params["index"])
    except FountainError as error:
        return error_response(error)
    keys = ("direction", "kind", "reason", "decision", "q")
    filters = {k: request.query_params.get(k, "") for k in keys}
    return JSONResponse(await asyncio.to_thread(listing, output, filters))


async def show_record(request: Request) -> JSONResponse:
    """GET: one record in full."""
    studio: Studio = request.app.state.studio
    try:
        output = studio.output(request.path_params["index"])
    except FountainError as error:
        return error_response(error)
    found = await asyncio.to_thread(find, output, request.path_params["sample_id"])
    if found is None:
        return JSONResponse({"error": "no such record"}, status_code=404)
    return JSONResponse(found)


async def decide(request: Request) -> JSONResponse:
    """POST {id, decision: keep|drop}: append the decision to review.jsonl."""
    studio: Studio = request.app.state.studio
    try:
        output = studio.output(request.path_params["index"])
        body = await read_json(request)
        sample_id, decision = body.get("id"), body.get("decision")
        if not isinstance(sample_id, str) or await asyncio.to_thread(find, output, sample_id) is None:
            raise FountainError("no such record in this run", location="id")
        record = append_decision(output, sample_id, str(decision))
    except FountainError as error:
        return error_response(error)
    return JSONResponse(record)


async def build_report(request: Request) -> JSONResponse:
    """POST: ``fountain report OUTPUT --html OUTPUT/report.html --no-embed`` (a subprocess)."""
    studio: Studio = request.app.state.studio
    try:
        output = studio.output(request.path_params["index"])
        if not (output / "manifest.json").is_file():
            raise FountainError("no run in this folder yet", hint="start one on the Run page")
    except FountainError as error:
        return error_response(error)
    html = output / REPORT_FILE
    command = [sys.executable, "-m", "fountain", "report", str(output), "--html", str(html), "--no-embed"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), REPORT_TIMEOUT_S)
    except asyncio.TimeoutError:
        process.kill()
        return JSONResponse({"error": "the report took too long"}, status_code=500)
    if process.returncode != 0:
        tail = out.decode("utf-8", "replace").strip().splitlines()[-5:]
        return JSONResponse({"error": "the report failed", "log": tail}, status_code=500)
    return JSONResponse({"url": f"/api/folders/{request.path_params['index']}/files/output/{REPORT_FILE}"})


async def folder_file(request: Request) -> Response:
    """GET: a file inside the opened folder (the report); anything outside it is refused."""
    studio: Studio = request.app.state.studio
    try:
        path = inside(studio.folder(request.path_params["index"]), request.path_params["path"])
    except FountainError as error:
        return error_response(error)
    if not path.is_file():
        return JSONResponse({"error": "no such file"}, status_code=404)
    # Served in a sandbox (an opaque origin): a page in a stranger's spec folder cannot act as the studio.
    return FileResponse(path, headers={"content-security-policy": "sandbox allow-scripts allow-popups"})
