"""Anthropic Message Batches (``/v1/messages/batches``).

Each request's ``custom_id`` is its cache key (64 hex characters, within the API's limit), its
``params`` what the direct run sends: a JSON schema becomes a forced tool, as in
:mod:`fountain.providers.anthropic`. The API keeps no metadata on a batch, so a job whose create
call may have happened but whose id was never written down cannot be found again: the rerun
refuses rather than pay twice (see :mod:`fountain.batch.phase`).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from fountain.batch.base import Http, JobStatus, LineResult, jsonl, shaped
from fountain.providers.base import Completion, Request
from fountain.providers.http import merged_sampling, read_key

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096


class AnthropicBatch:
    """Batch jobs for an :class:`~fountain.providers.anthropic.AnthropicProvider`."""

    name = "anthropic"
    can_find = False

    def __init__(self, provider: Any):
        self.provider = provider
        key = read_key((provider._key_env,), provider="anthropic")
        headers = {"x-api-key": str(key), "anthropic-version": VERSION}
        self.http = Http("anthropic", provider.base_url + "/v1", headers)

    def params(self, request: Request) -> dict[str, Any]:
        """The Messages API parameters of ``request`` (what the provider's direct call sends)."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        params: dict[str, Any] = {
            "model": self.provider.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
        }
        sampling = merged_sampling(self.provider.sampling, request.sampling)
        params["max_tokens"] = sampling.pop("max_tokens", DEFAULT_MAX_TOKENS)
        params.update(sampling)
        if system:
            params["system"] = system
        if request.schema is not None:
            tool, _ = self.provider._tool(request.schema)
            params["tools"] = [tool]
            params["tool_choice"] = {"type": "tool", "name": tool["name"]}
        return params

    def line(self, key: str, request: Request) -> bytes:
        entry = {"custom_id": key, "params": self.params(request)}
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def completion(self, body: Any, request: Request) -> Completion:
        blocks = [SimpleNamespace(**block) for block in body.get("content") or () if isinstance(block, dict)]
        usage = body.get("usage") or {}
        message = SimpleNamespace(
            content=blocks,
            stop_reason=body.get("stop_reason"),
            model=body.get("model"),
            usage=SimpleNamespace(
                input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0)
            ),
        )
        wrapped = False
        if request.schema is not None:
            _, wrapped = self.provider._tool(request.schema)
        return self.provider._parse(message, request, wrapped)

    @shaped
    async def submit(self, job_id: str, lines: list[tuple[str, bytes]]) -> str:
        body = b'{"requests":[' + b",".join(line for _, line in lines) + b"]}"
        batch = await self.http.json("POST", "/messages/batches", json_body=json.loads(body))
        return str(batch["id"])

    @shaped
    async def find(self, job_id: str) -> str | None:
        return None  # the API keeps no metadata to find a batch by

    @shaped
    async def poll(self, remote_id: str) -> JobStatus:
        batch = await self.http.json("GET", f"/messages/batches/{remote_id}")
        state = str(batch.get("processing_status"))
        counts = {k: int(v) for k, v in (batch.get("request_counts") or {}).items() if isinstance(v, int)}
        return JobStatus(state, state == "ended", counts)

    @shaped
    async def results(self, remote_id: str) -> list[LineResult]:
        out = []
        for item in jsonl(await self.http.request("GET", f"/messages/batches/{remote_id}/results")):
            key = str(item.get("custom_id"))
            result = item.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                out.append(LineResult(key, body=result.get("message") or {}))
            elif kind == "errored":
                error = (result.get("error") or {}).get("error") or result.get("error") or {}
                out.append(LineResult(key, error=f"errored: {error.get('type', '')} {error.get('message', '')}"[:200]))
            else:
                out.append(LineResult(key, error=str(kind or "unknown")))
        return out

    @shaped
    async def cancel(self, remote_id: str) -> None:
        await self.http.json("POST", f"/messages/batches/{remote_id}/cancel")

    async def aclose(self) -> None:
        await self.http.aclose()
