"""The job ledger of a batch run: ``batches.jsonl`` in the output folder, append-only, fsynced.

Events, one JSON object a line:

- ``intent``: written *before* a job is created: the local job id, the provider, the request keys
  (``custom_id``) it holds and the sha256 of its input. From then on those keys count as
  submitted: a rerun never sends them again.
- ``created``: the provider's job id, written as soon as the create call returns.
- ``state``: the job's state and request counts at a poll.
- ``collected``: the job's results are in the response cache; the keys that failed (errored,
  expired, cancelled) with their reasons, and the job's cost at batch prices.
- ``abandoned``: an intent given up by ``fountain cancel --forget`` (no job was found for it).

A torn last line (a kill in the middle of a write) is ignored when read back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.errors import OutputError

LEDGER_FILE = "batches.jsonl"
EXIT_SUBMITTED = 4  # `fountain run --batch` without --batch-wait: jobs submitted, not done yet
MAX_SUBMISSIONS = 3  # a request whose batch line errored or expired is submitted at most this often

ACTIVE, DONE = "active", "done"


@dataclass(frozen=True)
class BatchLimits:
    """How much one job may hold (the provider's documented limits by default)."""

    max_requests: int
    max_bytes: int


LIMITS = {
    "openai": BatchLimits(50_000, 200 * 1024 * 1024),
    "anthropic": BatchLimits(100_000, 256 * 1024 * 1024),
    # Inline requests (what fountain sends) are limited to 20 MB a job; 2 GB is for file input.
    "gemini": BatchLimits(100_000, 20 * 1024 * 1024),
}


@dataclass
class JobRecord:
    """One job as the ledger knows it."""

    job: str  # local id (also the job's metadata / display name at the provider)
    provider: str
    keys: list[str]
    file_hash: str = ""
    remote_id: str | None = None
    state: str = "intent"  # intent | the provider's state | collected | abandoned
    counts: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason (after collection)
    cost_usd: float = 0.0
    estimate_usd: float = 0.0
    created_at: str = ""
    identity: dict[str, Any] = field(default_factory=dict)  # the provider's (no secret)
    api_key_env: str | None = None  # the name of the key's variable, never the key
    fingerprint: str = ""  # of the spec whose requests these are
    usage: tuple[int, int] = (0, 0)  # prompt, completion tokens of the collected answers

    @property
    def finished(self) -> bool:
        return self.state in ("collected", "abandoned")

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "provider": self.provider,
            "remote_id": self.remote_id,
            "state": self.state,
            "requests": len(self.keys),
            "counts": dict(self.counts),
            "failed": len(self.failed),
            "cost_usd": round(self.cost_usd, 6),
            "created_at": self.created_at,
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    """``batches.jsonl`` read back into :class:`JobRecord` s, and appended to (each line fsynced)."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / LEDGER_FILE
        self.jobs: dict[str, JobRecord] = {}
        self.submissions: dict[str, int] = {}  # key -> how many jobs it was put in
        self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as handle:
            for raw in handle:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue  # a torn last line from a kill during a write
                if isinstance(event, dict):
                    self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        kind, job_id = event.get("event"), str(event.get("job", ""))
        if kind == "intent":
            keys = [str(k) for k in event.get("keys") or ()]
            self.jobs[job_id] = JobRecord(
                job_id,
                str(event.get("provider", "")),
                keys,
                str(event.get("file_hash", "")),
                estimate_usd=float(event.get("estimate_usd") or 0.0),
                created_at=str(event.get("at", "")),
                identity=dict(event.get("identity") or {}),
                api_key_env=event.get("api_key_env"),
                fingerprint=str(event.get("spec") or ""),
            )
            for key in keys:
                self.submissions[key] = self.submissions.get(key, 0) + 1
            return
        record = self.jobs.get(job_id)
        if record is None:
            return
        if kind == "created":
            record.remote_id = str(event.get("remote_id"))
            record.state = str(event.get("state") or "submitted")
        elif kind == "state":
            record.state = str(event.get("state"))
            record.counts = dict(event.get("counts") or {})
        elif kind == "collected":
            record.state = "collected"
            record.failed = {str(k): str(v) for k, v in (event.get("failed") or {}).items()}
            record.cost_usd = float(event.get("cost_usd") or 0.0)
            usage = event.get("usage") or {}
            record.usage = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            record.counts = dict(event.get("counts") or record.counts)
        elif kind == "abandoned" and record.state != "abandoned":
            record.state = "abandoned"
            for key in record.keys:  # never sent: they may be submitted again
                self.submissions[key] = max(0, self.submissions.get(key, 0) - 1)

    def append(self, event: dict[str, Any]) -> None:
        """Write one event and fsync it before returning (the ledger is the run's promise)."""
        event = {"at": _now(), **event}
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            raise OutputError(
                f"cannot write the batch ledger: {error.strerror or error}",
                location=str(self.path),
                hint="check the output folder's permissions and free space; nothing was submitted",
            ) from None
        self._apply(event)

    # --- questions -------------------------------------------------------------------------------

    def new_job_id(self) -> str:
        return f"fountain-{os.urandom(6).hex()}"

    def pending(self) -> list[JobRecord]:
        """Jobs submitted (or meant to be) whose results are not collected yet."""
        return [job for job in self.jobs.values() if not job.finished]

    def in_flight(self) -> set[str]:
        """Keys in a job not collected yet."""
        return {key for job in self.pending() for key in job.keys}

    def failures(self) -> dict[str, str]:
        """key -> reason of its latest failed batch line (cleared once a later job answers it)."""
        out: dict[str, str] = {}
        for job in self.jobs.values():
            if job.state != "collected":
                continue
            for key in job.keys:
                if key in job.failed:
                    out[key] = job.failed[key]
                else:
                    out.pop(key, None)
        return out

    def spent_usd(self) -> float:
        return sum(job.cost_usd for job in self.jobs.values())

    def reserved_usd(self) -> float:
        return sum(job.estimate_usd for job in self.pending())

    def summary(self) -> dict[str, Any]:
        """Job states and counts, for the manifest and ``fountain status``."""
        states: dict[str, int] = {}
        for job in self.jobs.values():
            states[job.state] = states.get(job.state, 0) + 1
        return {
            "ledger": LEDGER_FILE,
            "jobs": [job.to_dict() for job in self.jobs.values()],
            "states": states,
            "requests": sum(len(job.keys) for job in self.jobs.values()),
            "in_flight": len(self.in_flight()),
            "failed": len(self.failures()),
            "cost_usd": round(self.spent_usd(), 6),
            "usage": {
                "prompt_tokens": sum(job.usage[0] for job in self.jobs.values()),
                "completion_tokens": sum(job.usage[1] for job in self.jobs.values()),
            },
        }


def split(items: Iterable[tuple[str, bytes]], limits: BatchLimits) -> list[list[tuple[str, bytes]]]:
    """``(key, encoded line)`` pairs cut into jobs within ``limits`` (requests and bytes)."""
    jobs: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for key, line in items:
        if len(line) > limits.max_bytes:
            raise OutputError(
                f"one batch request is {len(line):,} bytes, more than a job may hold ({limits.max_bytes:,})",
                hint="shorten the prompts, or run without --batch",
            )
        if current and (len(current) >= limits.max_requests or size + len(line) > limits.max_bytes):
            jobs.append(current)
            current, size = [], 0
        current.append((key, line))
        size += len(line)
    if current:
        jobs.append(current)
    return jobs
