"""Gemini Batch Mode (``models/{model}:batchGenerateContent``, inline requests).

Each request carries ``metadata.key`` = its cache key; the batch's ``displayName`` is the ledger's
job id, which is how a rerun finds a job whose create call returned no id to write down (the
create is not idempotent: without the lookup a retry would pay twice). Structured output is
``responseMimeType: application/json`` with the schema (``responseJsonSchema``, or the OpenAPI
form ``responseSchema`` when the provider is set to it). Inline requests are limited to 20 MB a
job; bigger runs are split over several jobs.
"""

from __future__ import annotations

import json
from typing import Any

from fountain.batch.base import Http, JobStatus, LineResult, shaped
from fountain.providers.base import Completion, Request
from fountain.providers.http import read_key

ENDED = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")
_CAMEL = {
    "max_output_tokens": "maxOutputTokens",
    "top_p": "topP",
    "response_mime_type": "responseMimeType",
    "response_json_schema": "responseJsonSchema",
    "response_schema": "responseSchema",
}


class GeminiBatch:
    """Batch jobs for a :class:`~fountain.providers.gemini.GeminiProvider`."""

    name = "gemini"

    def __init__(self, provider: Any):
        self.provider = provider
        key = read_key(provider._key_envs, provider="gemini")
        self.http = Http("gemini", provider.base_url + "/v1beta", {"x-goog-api-key": str(key)})
        self._last: dict[str, Any] = {}  # remote id -> the batch object of the last poll

    def body(self, request: Request) -> dict[str, Any]:
        """The generateContent body of ``request`` (the provider's config, in REST field names)."""
        config = self.provider._config(request)
        system = config.pop("system_instruction", None)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
                for m in request.messages
                if m.role != "system"
            ],
            "generationConfig": {_CAMEL.get(k, k): v for k, v in config.items()},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def line(self, key: str, request: Request) -> bytes:
        entry = {"request": self.body(request), "metadata": {"key": key}}
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def completion(self, body: Any, request: Request) -> Completion:
        from fountain.types import Usage

        candidates = body.get("candidates") or []
        text, finish = "", None
        if candidates:
            parts = (candidates[0].get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if p.get("text") and not p.get("thought"))
            finish = candidates[0].get("finishReason")
        else:
            reason = (body.get("promptFeedback") or {}).get("blockReason")
            finish = f"blocked:{reason}" if reason else "no_candidates"
        data = None
        if request.schema is not None and text:
            try:
                data = json.loads(text)
            except ValueError:
                data = None
        meta = body.get("usageMetadata") or {}
        usage = Usage(
            int(meta.get("promptTokenCount") or 0),
            int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0),
        )
        model = str(body.get("modelVersion") or self.provider.model)
        return Completion(text=text, data=data, finish_reason=finish, usage=usage, model=model)

    @shaped
    async def submit(self, job_id: str, lines: list[tuple[str, bytes]]) -> str:
        requests = json.loads(b"[" + b",".join(line for _, line in lines) + b"]")
        batch = {"displayName": job_id, "inputConfig": {"requests": {"requests": requests}}}
        answer = await self.http.json(
            "POST", f"/models/{self.provider.model}:batchGenerateContent", json_body={"batch": batch}
        )
        return str(answer["name"])

    @shaped
    async def find(self, job_id: str) -> str | None:
        token = None
        for _ in range(50):
            page = await self.http.json("GET", "/batches?pageSize=100" + (f"&pageToken={token}" if token else ""))
            for operation in page.get("operations") or page.get("batches") or ():
                meta = operation.get("metadata") or operation
                if meta.get("displayName") == job_id:
                    return str(operation.get("name") or meta.get("name"))
            token = page.get("nextPageToken")
            if not token:
                return None
        return None

    @shaped
    async def poll(self, remote_id: str) -> JobStatus:
        operation = await self.http.json("GET", f"/{remote_id}")
        self._last[remote_id] = operation
        meta = operation.get("metadata") or {}
        state = str(meta.get("state") or "BATCH_STATE_PENDING")
        stats = meta.get("batchStats") or {}
        counts = {k: int(v) for k, v in stats.items() if str(v).isdigit()}
        return JobStatus(state, state in ENDED, counts)

    @shaped
    async def results(self, remote_id: str) -> list[LineResult]:
        operation = self._last.get(remote_id)
        if operation is None:
            await self.poll(remote_id)
            operation = self._last[remote_id]
        output = (
            (operation.get("response") or {}).get("inlinedResponses")
            or ((operation.get("metadata") or {}).get("output") or {}).get("inlinedResponses")
            or {}
        )
        out = []
        for item in output.get("inlinedResponses") or ():
            key = str((item.get("metadata") or {}).get("key"))
            if item.get("error"):
                error = item["error"]
                out.append(LineResult(key, error=f"error {error.get('code', '')}: {error.get('message', '')}"[:200]))
            else:
                out.append(LineResult(key, body=item.get("response") or {}))
        return out

    @shaped
    async def cancel(self, remote_id: str) -> None:
        await self.http.json("POST", f"/{remote_id}:cancel")

    async def aclose(self) -> None:
        await self.http.aclose()
