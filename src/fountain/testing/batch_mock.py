"""Batch APIs on the loopback mock server (:mod:`fountain.testing.mock_server`).

- OpenAI: ``POST /v1/files`` (multipart, purpose=batch), ``POST /v1/batches``, ``GET /v1/batches``
  (list), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``, ``GET /v1/files/{id}/content``
- Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches`` (list),
  ``GET /v1/messages/batches/{id}``, ``.../results``, ``POST .../cancel``
- Gemini: ``POST /v1beta/models/{model}:batchGenerateContent``, ``GET /v1beta/batches`` (list),
  ``GET /v1beta/batches/{id}``, ``POST /v1beta/batches/{id}:cancel``

A job ends after ``polls`` polls; its answers are made by the same code as the direct endpoints
(valid conversations from the request's schema), returned in reverse order. ``error_every=N``
makes every N-th line an error, ``expire=True`` ends the next job as expired with only its first
half answered, ``prose_every=N`` makes every N-th answer of the next (OpenAI) job prose that
fails validation. Batch traffic does not count as direct requests (``MockState.received``).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fountain import fastjson


@dataclass
class BatchJob:
    api: str
    id: str
    lines: list[dict[str, Any]]  # {"key", "body", "model"}
    meta: dict[str, Any] = field(default_factory=dict)  # OpenAI metadata / Gemini displayName
    polls_left: int = 1
    state: str = "running"  # running | ended | cancelled | expired
    results: list[dict[str, Any]] | None = None  # {"key", "answer"} or {"key", "error"}


@dataclass
class BatchMockState:
    """Jobs and files of the three batch APIs, and how the next jobs behave."""

    polls: int = 1
    error_every: int = 0
    expire: bool = False
    prose_every: int = 0  # OpenAI, next job only: every N-th answer is prose (fails validation)
    jobs: dict[str, BatchJob] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # ids of jobs in creation order
    lines_submitted: list[str] = field(default_factory=list)  # every key, once per submission
    cancelled: list[str] = field(default_factory=list)

    def configure(self, **options: Any) -> None:
        for name, value in options.items():
            if name not in ("polls", "error_every", "expire", "prose_every"):
                raise TypeError(f"unknown batch mock option {name!r}")
            setattr(self, name, value)


DIRECT_PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:generateContent",
}


class BatchRoutes:
    """The batch endpoints, added to a :class:`~fountain.testing.mock_server.MockServer`."""

    def __init__(self, server: Any):
        from fountain.testing import mock_server

        self.apis = {"openai": mock_server._OPENAI, "anthropic": mock_server._ANTHROPIC, "gemini": mock_server._GEMINI}
        self._mock = server.state
        server.state.batch = BatchMockState()
        router = server.app.router
        router.add_post("/v1/files", self.openai_upload)
        router.add_get("/v1/files/{id}/content", self.openai_file)
        router.add_post("/v1/batches", self.openai_create)
        router.add_get("/v1/batches", self.openai_list)
        router.add_get("/v1/batches/{id}", self.openai_get)
        router.add_post("/v1/batches/{id}/cancel", self.cancel)
        router.add_post("/v1/messages/batches", self.anthropic_create)
        router.add_get("/v1/messages/batches", self.anthropic_list)
        router.add_get("/v1/messages/batches/{id}", self.anthropic_get)
        router.add_get("/v1/messages/batches/{id}/results", self.anthropic_results)
        router.add_post("/v1/messages/batches/{id}/cancel", self.cancel)
        router.add_post("/v1beta/models/{model}:batchGenerateContent", self.gemini_create)
        router.add_get("/v1beta/batches", self.gemini_list)
        router.add_get("/v1beta/batches/{id}", self.gemini_get)
        router.add_post("/v1beta/batches/{id}:cancel", self.cancel)

    @property
    def state(self) -> BatchMockState:
        return self._mock.batch

    # --- shared ----------------------------------------------------------------------------------

    def _new(self, api: str, prefix: str, lines: list[dict[str, Any]], meta: dict[str, Any]) -> BatchJob:
        job = BatchJob(api, f"{prefix}{len(self.state.jobs) + 1:04d}", lines, meta, polls_left=self.state.polls)
        self.state.jobs[job.id] = job
        self.state.created.append(job.id)
        self.state.lines_submitted.extend(line["key"] for line in lines)
        return job

    def _advance(self, job: BatchJob) -> None:
        if job.state != "running":
            return
        job.polls_left -= 1
        if job.polls_left > 0:
            return
        api = self.apis[job.api]
        expire, prose = self.state.expire, self.state.prose_every
        self.state.expire, self.state.prose_every = False, 0
        results = []
        for number, line in enumerate(job.lines, 1):
            if expire and number > len(job.lines) // 2:
                results.append({"key": line["key"], "error": "expired"})
            elif self.state.error_every and number % self.state.error_every == 0:
                results.append({"key": line["key"], "error": "server_error"})
            else:
                # The answer a direct request with this body gets (same seed for the mock's
                # generator): a batch run then writes the dataset of a direct run.
                raw = fastjson.dumps_bytes(line["body"])
                path = DIRECT_PATHS[job.api].format(model=line["model"]).encode()
                seed = hashlib.blake2b(path + b"\0" + raw, digest_size=16).hexdigest()
                answer = api.answer(line["body"], line["model"], random.Random(seed), len(raw))
                if prose and job.api == "openai" and number % prose == 0:
                    answer["choices"][0]["message"]["content"] = "Sure! Here is a lovely conversation."
                results.append({"key": line["key"], "answer": answer})
        results.reverse()  # out of order
        job.results = results
        job.state = "expired" if expire else "ended"

    def _job(self, request: web.Request) -> BatchJob:
        job = self.state.jobs.get(request.match_info["id"].removeprefix("batches/"))
        if job is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": {"message": "no such batch"}}), content_type="application/json"
            )
        return job

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state == "running":
            job.state = "cancelled"
            job.results = []
        self.state.cancelled.append(job.id)
        return web.json_response(self._shape(job))

    def _shape(self, job: BatchJob) -> dict[str, Any]:
        return {"openai": self._openai, "anthropic": self._anthropic, "gemini": self._gemini}[job.api](job)

    def _counts(self, job: BatchJob) -> tuple[int, int]:
        results = job.results or []
        return sum("answer" in r for r in results), sum("error" in r for r in results)

    # --- OpenAI ----------------------------------------------------------------------------------

    async def openai_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        file = getattr(upload, "file", None)
        content = file.read() if file is not None else str(upload or "").encode()
        file_id = f"file-{len(self.state.files) + 1:04d}"
        self.state.files[file_id] = content
        return web.json_response(
            {"id": file_id, "object": "file", "bytes": len(content), "purpose": form.get("purpose")}
        )

    async def openai_file(self, request: web.Request) -> web.Response:
        content = self.state.files.get(request.match_info["id"])
        if content is None:
            raise web.HTTPNotFound()
        return web.Response(body=content, content_type="application/octet-stream")

    async def openai_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        content = self.state.files.get(body.get("input_file_id"), b"")
        lines = []
        for raw in content.splitlines():
            item = json.loads(raw)
            lines.append({"key": item["custom_id"], "body": item["body"], "model": item["body"].get("model", "")})
        job = self._new("openai", "batch_", lines, body.get("metadata") or {})
        return web.json_response(self._openai(job))

    async def openai_list(self, request: web.Request) -> web.Response:
        jobs = [self._openai(j) for j in reversed(self.state.jobs.values()) if j.api == "openai"]
        return web.json_response({"object": "list", "data": jobs, "has_more": False})

    async def openai_get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self._advance(job)
        return web.json_response(self._openai(job))

    def _openai(self, job: BatchJob) -> dict[str, Any]:
        status = {"running": "in_progress", "ended": "completed", "cancelled": "cancelled", "expired": "expired"}[
            job.state
        ]
        out: dict[str, Any] = {"id": job.id, "object": "batch", "status": status, "metadata": job.meta}
        ok, bad = self._counts(job)
        out["request_counts"] = {"total": len(job.lines), "completed": ok, "failed": bad}
        if job.results is not None and job.state != "running":
            good = [
                {
                    "id": f"r{n}",
                    "custom_id": r["key"],
                    "response": {"status_code": 200, "body": r["answer"]},
                    "error": None,
                }
                for n, r in enumerate(job.results)
                if "answer" in r
            ]
            errors = [
                {
                    "id": f"e{n}",
                    "custom_id": r["key"],
                    "response": None,
                    "error": {"code": "batch_expired", "message": "expired"},
                }
                if r["error"] == "expired"
                else {
                    "id": f"e{n}",
                    "custom_id": r["key"],
                    "response": {"status_code": 500, "body": {"error": {"message": "server error"}}},
                    "error": None,
                }
                for n, r in enumerate(job.results)
                if "error" in r
            ]
            for name, items in (("output_file_id", good), ("error_file_id", errors)):
                if items:
                    file_id = f"file-{job.id}-{name[:3]}"
                    self.state.files[file_id] = b"".join(json.dumps(i).encode() + b"\n" for i in items)
                    out[name] = file_id
        return out

    # --- Anthropic -------------------------------------------------------------------------------

    async def anthropic_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [
            {"key": r["custom_id"], "body": r["params"], "model": r["params"].get("model", "")}
            for r in body["requests"]
        ]
        return web.json_response(self._anthropic(self._new("anthropic", "msgbatch_", lines, {})))

    async def anthropic_list(self, request: web.Request) -> web.Response:
        jobs = [self._anthropic(j) for j in reversed(self.state.jobs.values()) if j.api == "anthropic"]
        return web.json_response({"data": jobs, "has_more": False})

    async def anthropic_get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self._advance(job)
        return web.json_response(self._anthropic(job))

    async def anthropic_results(self, request: web.Request) -> web.Response:
        job = self._job(request)
        lines = []
        for r in job.results or []:
            if "answer" in r:
                result: dict[str, Any] = {"type": "succeeded", "message": r["answer"]}
            elif r["error"] == "expired":
                result = {"type": "expired"}
            else:
                result = {
                    "type": "errored",
                    "error": {"type": "error", "error": {"type": "api_error", "message": "boom"}},
                }
            lines.append(json.dumps({"custom_id": r["key"], "result": result}).encode())
        return web.Response(body=b"\n".join(lines), content_type="application/binary")

    def _anthropic(self, job: BatchJob) -> dict[str, Any]:
        ok, bad = self._counts(job)
        running = job.state == "running"
        return {
            "id": job.id,
            "type": "message_batch",
            "processing_status": "in_progress" if running else "ended",
            "request_counts": {
                "processing": len(job.lines) if running else 0,
                "succeeded": ok,
                "errored": bad if job.state != "expired" else 0,
                "canceled": 0,
                "expired": bad if job.state == "expired" else 0,
            },
            "results_url": None if running else f"/v1/messages/batches/{job.id}/results",
        }

    # --- Gemini ----------------------------------------------------------------------------------

    async def gemini_create(self, request: web.Request) -> web.Response:
        body = (await request.json())["batch"]
        model = request.match_info["model"]
        requests = body["inputConfig"]["requests"]["requests"]
        lines = [{"key": r["metadata"]["key"], "body": r["request"], "model": model} for r in requests]
        job = self._new("gemini", "", lines, {"displayName": body.get("displayName")})
        return web.json_response(self._gemini(job))

    async def gemini_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"operations": [self._gemini(j) for j in self.state.jobs.values() if j.api == "gemini"]}
        )

    async def gemini_get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self._advance(job)
        return web.json_response(self._gemini(job))

    def _gemini(self, job: BatchJob) -> dict[str, Any]:
        state = {
            "running": "BATCH_STATE_RUNNING",
            "ended": "BATCH_STATE_SUCCEEDED",
            "cancelled": "BATCH_STATE_CANCELLED",
            "expired": "BATCH_STATE_EXPIRED",
        }[job.state]
        meta: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"}
        meta.update({"name": f"batches/{job.id}", "displayName": job.meta.get("displayName"), "state": state})
        out: dict[str, Any] = {"name": f"batches/{job.id}", "metadata": meta, "done": job.state != "running"}
        if job.state == "ended":
            responses = [
                {"response": r["answer"], "metadata": {"key": r["key"]}}
                if "answer" in r
                else {"error": {"code": 13, "message": "internal"}, "metadata": {"key": r["key"]}}
                for r in job.results or []
            ]
            out["response"] = {"inlinedResponses": {"inlinedResponses": responses}}
        return out
