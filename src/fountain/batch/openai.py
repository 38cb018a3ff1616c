"""OpenAI Batch API (also any OpenAI-compatible server that implements ``/files`` and ``/batches``).

A job is a JSONL file uploaded with ``purpose=batch`` and a batch created on it for
``/v1/chat/completions``, with ``metadata.fountain_job`` = the ledger's job id (how a rerun finds
a job whose id it did not get to write down). Each line's ``custom_id`` is the request's cache key;
its ``body`` is exactly what the direct run sends (``response_format`` json_schema included).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fountain.batch.base import Http, JobStatus, LineResult, jsonl, shaped
from fountain.providers.base import Completion, Request
from fountain.providers.http import read_key

ENDED = ("completed", "failed", "expired", "cancelled")


class OpenAIBatch:
    """Batch jobs for an :class:`~fountain.providers.openai.OpenAIProvider`."""

    name = "openai"

    def __init__(self, provider: Any):
        self.provider = provider
        key = read_key((provider._key_env,), provider="openai", required=provider._official)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = Http("openai", provider.base_url, headers)
        self._path = "/v1/chat/completions" if provider.base_url.endswith("/v1") else "/chat/completions"
        self._files: dict[str, tuple[str | None, str | None]] = {}  # job -> (output, error) file ids

    def line(self, key: str, request: Request) -> bytes:
        body = json.loads(self.provider._body(request, self.provider._level))
        entry = {"custom_id": key, "method": "POST", "url": self._path, "body": body}
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"

    def completion(self, body: Any, request: Request) -> Completion:
        raw = json.dumps(body).encode("utf-8")
        return self.provider._parse(raw, request, self.provider._level)

    @shaped
    async def submit(self, job_id: str, lines: list[tuple[str, bytes]]) -> str:
        import aiohttp

        content = b"".join(line for _, line in lines)
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", content, filename=f"{job_id}.jsonl", content_type="application/jsonl")
        uploaded = await self.http.json("POST", "/files", data=form)
        batch = await self.http.json(
            "POST",
            "/batches",
            json_body={
                "input_file_id": uploaded["id"],
                "endpoint": self._path,
                "completion_window": "24h",
                "metadata": {"fountain_job": job_id, "sha256": hashlib.sha256(content).hexdigest()[:32]},
            },
        )
        return str(batch["id"])

    @shaped
    async def find(self, job_id: str) -> str | None:
        after = None
        for _ in range(50):  # 5,000 most recent batches
            query = "/batches?limit=100" + (f"&after={after}" if after else "")
            page = await self.http.json("GET", query)
            for batch in page.get("data") or ():
                if (batch.get("metadata") or {}).get("fountain_job") == job_id:
                    return str(batch["id"])
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page["data"][-1]["id"]
        return None

    @shaped
    async def poll(self, remote_id: str) -> JobStatus:
        batch = await self.http.json("GET", f"/batches/{remote_id}")
        state = str(batch.get("status"))
        counts = {k: int(v) for k, v in (batch.get("request_counts") or {}).items() if isinstance(v, int)}
        self._files[remote_id] = (batch.get("output_file_id"), batch.get("error_file_id"))
        return JobStatus(state, state in ENDED, counts)

    @shaped
    async def results(self, remote_id: str) -> list[LineResult]:
        files = self._files.get(remote_id)
        if files is None:
            await self.poll(remote_id)
            files = self._files[remote_id]
        out: list[LineResult] = []
        for file_id in files:
            if not file_id:
                continue
            for item in jsonl(await self.http.request("GET", f"/files/{file_id}/content")):
                key = str(item.get("custom_id"))
                response = item.get("response") or {}
                error = item.get("error")
                if error:
                    out.append(LineResult(key, error=str(error.get("code") or error.get("message") or "error")))
                elif int(response.get("status_code") or 0) != 200:
                    detail = ((response.get("body") or {}).get("error") or {}).get("message", "")
                    out.append(LineResult(key, error=f"http_{response.get('status_code')}: {detail}"[:200]))
                else:
                    out.append(LineResult(key, body=response.get("body")))
        return out

    @shaped
    async def cancel(self, remote_id: str) -> None:
        await self.http.json("POST", f"/batches/{remote_id}/cancel")

    async def aclose(self) -> None:
        await self.http.aclose()
