"""The run page: start ``python -m fountain run`` in a subprocess, watch it through its journals
and manifest (server-sent events), stop it with SIGINT so it saves cleanly. A stopped run resumes
when started again, exactly as the same command would from the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fountain.errors import FountainError
from fountain.studio.security import inside
from fountain.studio.state import Studio, error_response, read_json

PROVIDERS = ("fake", "local", "openai", "anthropic", "gemini")
COUNTS = {"seeds_per_direction": (1, 100_000), "derivations_per_direction": (0, 100_000), "concurrency": (1, 1024)}
POLL_S = 0.5


@dataclass
class Job:
    """One run subprocess and the last lines it wrote."""

    process: subprocess.Popen[bytes]
    command: list[str]
    options: dict[str, Any]
    log: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    def running(self) -> bool:
        return self.process.poll() is None


class RunManager:
    """At most one run per opened folder."""

    def __init__(self) -> None:
        self.jobs: dict[Path, Job] = {}
        self.lock = threading.Lock()

    def start(self, folder: Path, options: dict[str, Any]) -> Job:
        with self.lock:
            job = self.jobs.get(folder)
            if job is not None and job.running():
                raise FountainError("a run of this folder is going on", hint="stop it first, or wait for it to end")
            command = run_command(folder, options)
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=folder
            )
            job = Job(process, command, options)
            threading.Thread(target=_pump, args=(job,), daemon=True).start()
            self.jobs[folder] = job
            return job

    def stop(self, folder: Path) -> bool:
        """SIGINT to the run of ``folder`` (it saves and exits, like Ctrl-C); whether one ran."""
        job = self.jobs.get(folder)
        if job is None or not job.running():
            return False
        job.process.send_signal(signal.SIGINT)
        return True

    def close(self) -> None:
        """Stop every run still going (the studio is shutting down) and wait for them to save."""
        for job in self.jobs.values():
            if job.running():
                job.process.send_signal(signal.SIGINT)
        for job in self.jobs.values():
            try:
                job.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job.process.terminate()


def _pump(job: Job) -> None:
    assert job.process.stdout is not None
    for raw in job.process.stdout:
        job.log.append(raw.decode("utf-8", "replace").rstrip())


def run_options(folder: Path, body: dict[str, Any]) -> dict[str, Any]:
    """The checked options of a run request (anything else is refused, not passed on)."""
    provider = str(body.get("provider") or "fake").lower()
    if provider not in PROVIDERS:
        raise FountainError(f"unknown provider {provider!r}", location="provider", hint=", ".join(PROVIDERS))
    options: dict[str, Any] = {"provider": provider}
    model = body.get("model")
    if model:
        if not isinstance(model, str) or model.startswith("-") or any(c in model for c in "\r\n\x00"):
            raise FountainError("not a model name", location="model")
        # The local model is a file: it must be one of the folder's (no file outside is read).
        options["model"] = str(inside(folder, model)) if provider == "local" else model
    base_url = body.get("base_url")
    if base_url:
        from urllib.parse import urlsplit

        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in str(base_url)):
            raise FountainError(
                "not an http(s) URL with a host", location="base_url", hint="e.g. http://localhost:8000/v1"
            )
        options["base_url"] = str(base_url)
    for name, (low, high) in COUNTS.items():
        value = body.get(name)
        if value in (None, ""):
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = low - 1
        if not low <= number <= high:
            raise FountainError(f"{name} must be a whole number from {low} to {high}", location=name)
        options[name] = number
    if body.get("seed") not in (None, ""):
        try:
            options["seed"] = int(body["seed"])
        except (TypeError, ValueError):
            raise FountainError("seed must be a whole number", location="seed") from None
    return options


# Options of a recorded run that the studio passes on when it resumes it (flag name when the
# CLI's differs), those it can leave out (session details), and the rest, which it refuses.
RESUMABLE = {
    "provider": "provider",
    "model": "model",
    "base_url": "base-url",
    "seed": "seed",
    "seeds_per_direction": "seeds-per-direction",
    "derivations_per_direction": "derivations-per-direction",
    "concurrency": "concurrency",
    "max_turns": "max-turns",
    "mode": "mode",
    "format": "format",
    "framework": "framework",
    "target": "target",
    "iterations": "iterations",
    "rpm": "rpm",
    "tpm": "tpm",
    "budget_usd": "budget",
    "max_error_rate": "max-error-rate",
    "personas": "personas",
    "prefix_loss": "prefix-loss",
    "timeout": "timeout",
    "structured_output": "structured-output",
    "judge": "judge",  # fountain run --judge PROVIDER[:MODEL] (a resume needs the same judge)
}
SESSION_ONLY = frozenset({"fsync", "resume", "no_cache", "quiet", "progress", "output"})


def run_command(folder: Path, options: dict[str, Any]) -> list[str]:
    """``python -m fountain run`` for ``folder`` with ``options`` (output: ``<folder>/output``)."""
    command = [sys.executable, "-m", "fountain", "run", "--target-folder", str(folder), "--quiet"]
    for name, value in options.items():
        command += [f"--{RESUMABLE.get(name, name.replace('_', '-'))}", str(value)]
    return command


def last_options(folder: Path, output: Path) -> dict[str, Any]:
    """The options of the last session of the run in ``output``, to resume it as it was started
    (re-exporting the dataset with the hand review applied costs no request: all is cached).
    A run started with options the studio cannot pass on (files: real data, prices, a cache
    elsewhere; privacy settings) is refused with the hint to resume it from the command line."""
    from fountain.run.manifest import Manifest

    manifest = Manifest.read(output)
    if manifest is None or not manifest.runs:
        raise FountainError("no run in this folder yet", location=str(output), hint="start one on the Run page")
    recorded = manifest.runs[-1].get("options") or {}
    options: dict[str, Any] = {}
    for name, value in recorded.items():
        if value in (None, [], ()) or name in SESSION_ONLY or (name == "max_error_rate" and value == 0.5):
            continue
        if name not in RESUMABLE:
            raise FountainError(
                f"this run was started with --{name.replace('_', '-')}, which the studio does not pass on",
                location=str(output / "manifest.json"),
                hint="resume it with the same `fountain run` command; the dataset is then exported with the review",
            )
        options[name] = value
    if options.get("provider") == "local" and options.get("model"):
        options["model"] = str(inside(folder, str(options["model"])))
    return options


def snapshot(studio: Studio, index: Any) -> dict[str, Any]:
    """The run of folder ``index`` now: whether it runs, its log, and ``fountain status --json``."""
    from fountain.run.status import collect_status

    folder = studio.folder(index)
    job = studio.runs.jobs.get(folder)
    state: dict[str, Any] = {
        "running": bool(job and job.running()),
        "returncode": None if job is None else job.process.poll(),
        "options": None if job is None else job.options,
        "log": [] if job is None else list(job.log),
        "status": None,
    }
    output = studio.output(index)
    if (output / "manifest.json").is_file():
        try:
            state["status"] = collect_status(output, check_spec=False)
        except FountainError as error:
            state["status_error"] = error.message
    return state


async def start(request: Request) -> JSONResponse:
    """POST {provider, model, seeds_per_direction, derivations_per_direction, seed}: start a run."""
    studio: Studio = request.app.state.studio
    try:
        folder = studio.folder(request.path_params["index"])
        options = run_options(folder, await read_json(request))
        job = studio.runs.start(folder, options)
    except FountainError as error:
        return error_response(error)
    return JSONResponse({"started": True, "options": job.options})


async def resume(request: Request) -> JSONResponse:
    """POST: start the folder's last run again as it was (it resumes, and re-exports the dataset
    without the records the hand review drops)."""
    studio: Studio = request.app.state.studio
    index = request.path_params["index"]
    try:
        folder = studio.folder(index)
        job = studio.runs.start(folder, last_options(folder, studio.output(index)))
    except FountainError as error:
        return error_response(error)
    return JSONResponse({"started": True, "options": job.options})


async def stop(request: Request) -> JSONResponse:
    """POST: stop the folder's run (SIGINT: it saves what it has)."""
    studio: Studio = request.app.state.studio
    try:
        stopped = studio.runs.stop(studio.folder(request.path_params["index"]))
    except FountainError as error:
        return error_response(error)
    return JSONResponse({"stopping": stopped})


async def status(request: Request) -> JSONResponse:
    """GET: the run's state once."""
    studio: Studio = request.app.state.studio
    try:
        return JSONResponse(await asyncio.to_thread(snapshot, studio, request.path_params["index"]))
    except FountainError as error:
        return error_response(error)


async def events(request: Request) -> Response:
    """GET: server-sent events, one ``status`` event whenever the run's state changes."""
    studio: Studio = request.app.state.studio
    index = request.path_params["index"]
    try:
        studio.folder(index)
    except FountainError as error:
        return error_response(error)

    async def stream():
        last = None
        while not studio.closing.is_set() and not await request.is_disconnected():
            text = json.dumps(await asyncio.to_thread(snapshot, studio, index), ensure_ascii=False)
            if text != last:
                last = text
                yield f"event: status\ndata: {text}\n\n"
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})
