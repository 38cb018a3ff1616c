"""Throughput benchmark: fountain's request path against a loopback mock OpenAI server.

    python benchmarks/throughput.py                       # 10,000 requests, concurrency 256, 100 ms
    python benchmarks/throughput.py --engine --engine-memory   # also the whole engine
    python benchmarks/throughput.py --error-rate 0.2      # with injected 429/500/timeouts/bad JSON
    python benchmarks/throughput.py --requests 2000 --records 20000 --json results.json
    python benchmarks/throughput.py --requests 20000 --engine --startup --records 0   # issue 12's targets

The mock server (``fountain.testing.mock_server``) runs in a separate process, so the CPU time
measured here (``time.process_time``) is the client's alone. Phases:

1. **baseline**: a plain ``aiohttp`` loop sends the same request bodies (no faults), the best
   this machine can do against this server;
2. **fountain**: the real ``openai`` adapter + :class:`fountain.providers.dispatch.Dispatcher` (response
   cache, adaptive limiter, retries, cost) + validation + one journal line per accepted sample
   (fsynced by group commit), with the configured faults; every request must end accepted or
   rejected with a reason;
3. **engine** (``--engine``): ``fountain run`` in-process on samples/marriage_counsel;
4. **memory**: in fresh processes, at a tenth of N and at N records: records appended to a
   journal, streamed back and exported as ``dataset.jsonl``; with ``--engine-memory`` also the
   whole engine against an instant in-process provider. Prints each process's peak RSS.

Targets (issue 4): at least 90% of the ideal (concurrency / latency) at concurrency 256 and 100 ms
over 10,000 requests; under 2 ms of fountain CPU per request; under 300 MB RSS at 100,000 records.
The plain loop's figure shows what this machine allows: where client and server share few busy
cores, no client reaches the ideal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fountain import aio

HERE = Path(__file__).resolve().parent

TARGET_RATIO = 0.90
STARTUP_TARGET_S = 0.3  # process start to first request (issue 12)
TARGET_CPU_MS = 2.0
TARGET_RSS_MB = 300.0
SYSTEM = "You write realistic multi-turn conversations between a client and a counselor as JSON."


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far.

    Linux: ``VmHWM`` of /proc/self/status (``ru_maxrss`` would also count the parent's memory at
    the fork that started this process); elsewhere ``ru_maxrss`` (macOS reports bytes)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --- the mock server, in its own process ---------------------------------------------------------


class Server:
    def __init__(self, latency_ms: float, jitter_ms: float):
        from fountain.testing.mock_server import free_port

        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fountain.testing.mock_server",
                "--port",
                str(self.port),
                "--latency-ms",
                str(latency_ms),
                "--jitter-ms",
                str(jitter_ms),
                "--timeout-s",
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.process.stdout.readline()
        if "listening" not in line:
            self.process.kill()
            raise SystemExit(f"the mock server did not start: {line}{self.process.stdout.read()}")
        self.url = f"http://127.0.0.1:{self.port}"

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.request(method, self.url + path, json=body) as response:
            return await response.json()

    def cpu_s(self) -> float | None:
        """CPU time (user + system) the server process has used so far; None where /proc is absent."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    async def measured(self, phase: Any) -> dict[str, Any]:
        """Await ``phase`` (a coroutine returning a result with ``requests``) and add the server's
        CPU milliseconds per request to its result: the share of the machine the server took."""
        before = self.cpu_s()
        result: dict[str, Any] = await phase
        after = self.cpu_s()
        if before is not None and after is not None and result.get("requests"):
            result["server_cpu_ms_per_request"] = 1000 * (after - before) / result["requests"]
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- phase 1: a plain aiohttp loop ------------------------------------------------------------------


def request_body(i: int, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "mock-model",
        "temperature": 0.8,
        "max_tokens": 512,
        "seed": i,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Write conversation number {i} about a shared budget."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "conversation", "schema": schema, "strict": True},
        },
    }


async def baseline(url: str, n: int, concurrency: int, schema: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    statuses: Counter[int] = Counter()
    next_index = iter(range(n))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in next_index:
                body = json.dumps(request_body(i, schema)).encode()
                async with session.post(
                    url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    json.loads(await response.read())
                    statuses[response.status] += 1

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "requests": n,
        "wall_s": wall,
        "rps": n / wall,
        "cpu_ms_per_request": 1000 * cpu / n,
        "statuses": dict(statuses),
    }


# --- phase 2: fountain ----------------------------------------------------------------------------------


async def fountain_phase(
    url: str,
    n: int,
    concurrency: int,
    folder: Path,
    *,
    use_cache: bool,
    timeout_s: float,
    validate: bool = True,
    journal_lines: bool = True,
    fsync: bool = True,
) -> dict[str, Any]:
    from fountain.errors import ProviderError
    from fountain.generation.rules import Rules
    from fountain.generation.shape import request_schema
    from fountain.generation.validate import validate_completion
    from fountain.providers import create_provider
    from fountain.providers.base import Message, ProviderConfig, Request, Sampling
    from fountain.providers.cache import ResponseCache
    from fountain.providers.cost import PriceTable
    from fountain.providers.dispatch import Dispatcher
    from fountain.providers.throttle import RetryPolicy
    from fountain.run.journal import Journal
    from fountain.types import Provenance, Sample

    rules = Rules(min_turns=1, max_turns=8)
    schema = request_schema(rules)
    provider = create_provider(
        ProviderConfig(provider="openai", model="mock-model", base_url=url + "/v1", timeout_s=timeout_s)
    )
    cache = ResponseCache(folder / "cache.sqlite") if use_cache else None
    dispatcher = Dispatcher(
        provider,
        cache=cache,
        concurrency=concurrency,
        retry=RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=2.0),
        prices=PriceTable.load(),
        max_error_rate=0.9,
        error_window=200,
    )
    journal = Journal(folder / "seeds.jsonl", fsync=fsync)
    rejects = Journal(folder / "rejects.jsonl", fsync=fsync)
    outcomes: Counter[str] = Counter()
    sampling = Sampling(temperature=0.8, max_tokens=512)
    system = Message("system", SYSTEM)

    async def one(i: int) -> None:
        request = Request(
            messages=(system, Message("user", f"Write conversation number {i} about a shared budget.")),
            schema=schema,
            sampling=sampling,
            sample_index=i,
            seed=1,
            purpose="seed",
        )
        try:
            completion = await dispatcher.complete(request)
        except ProviderError as error:
            outcomes["rejected:provider_error"] += 1
            rejects.append(
                {
                    "id": f"s{i}",
                    "kind": "seed",
                    "reason": "provider_error",
                    "detail": f"{type(error).__name__}: {error.message}",
                }
            )
            return
        if not validate:
            outcomes["accepted (not validated)"] += 1
            return
        result = validate_completion(
            completion.data if completion.data is not None else completion.text,
            spec_or_rules=rules,
            finish_reason=completion.finish_reason,
        )
        if result.ok and not journal_lines:
            outcomes["accepted (not written)"] += 1
        elif result.ok:
            sample = Sample(
                f"s{i}",
                result.turns,
                Provenance(
                    kind="seed",
                    direction="budget",
                    category="counsel",
                    provider="openai",
                    model=completion.model,
                    usage=completion.usage,
                ),
            )
            journal.append(sample.to_record())
            outcomes["accepted"] += 1
        else:
            outcomes[f"rejected:{result.reason}"] += 1
            rejects.append(
                {
                    "id": f"s{i}",
                    "kind": "seed",
                    "reason": result.reason,
                    "detail": result.detail,
                    "raw": completion.text[:2000],
                }
            )

    cpu, wall = time.process_time(), time.perf_counter()
    # Bounded workers, as an engine schedules tasks (the limiter still decides what is in flight).
    indices = iter(range(n))

    async def worker() -> None:
        for i in indices:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await provider.aclose()
    journal.close()
    rejects.close()
    stats = dispatcher.stats
    if cache is not None:
        cache.close()
    return {
        "requests": n,
        "wall_s": wall,
        "rps": n / wall,
        "cpu_ms_per_request": 1000 * cpu / n,
        "outcomes": dict(outcomes),
        "accounted": sum(outcomes.values()),
        "retries": stats.retries,
        "errors": dict(stats.errors),
        "provider_calls": stats.requests,
        "final_concurrency_limit": dispatcher.limiter.limit,
        "usage": stats.usage.to_dict(),
    }


# --- phase 2b: the whole engine ----------------------------------------------------------------------


def _bench_spec(folder: Path) -> Path:
    """A copy of samples/marriage_counsel with dedup off: dedup is a separate stage after
    generation (and the mock's templated answers are all near-duplicates); these phases measure
    generation."""
    import shutil

    import yaml

    spec_dir = folder / "spec"
    shutil.copytree(HERE.parent / "samples" / "marriage_counsel", spec_dir, ignore=shutil.ignore_patterns("output"))
    setup = spec_dir / "setup.yaml"
    data = yaml.safe_load(setup.read_text())
    data.setdefault("raters", {})["dedup"] = {"enabled": False}
    setup.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return spec_dir


def _children_cpu() -> float:
    """CPU time of this process's ended (and waited for) child processes."""
    times = os.times()
    return times.children_user + times.children_system


async def engine_phase(
    url: str, n: int, concurrency: int, folder: Path, *, fsync: bool = True, validation_processes: int | None = None
) -> dict[str, Any]:
    """What ``fountain run`` does (the framework runner, Gen), in-process, on a copy of
    samples/marriage_counsel: about ``n`` seed conversations, one request each (json mode, no
    derivations)."""
    import fountain
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec

    spec = load_spec(_bench_spec(folder))
    per_direction = max(1, n // len(spec.seed_directions))
    options = RunOptions(
        output=folder / "out",
        provider="openai",
        model="mock-model",
        base_url=url + "/v1",
        seed=1,
        concurrency=concurrency,
        mode="json",
        seeds_per_direction=per_direction,
        derivations_per_direction=0,
        quiet=True,
        fsync=fsync,
        validation_processes=validation_processes,
    )
    cpu, wall, loop_cpu, children = time.process_time(), time.perf_counter(), time.thread_time(), _children_cpu()
    result = await fountain.generate_async(spec, options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # validation processes: their CPU is counted once they end (the run waits for that)
    children = _children_cpu() - children
    loop_cpu = time.thread_time() - loop_cpu  # the event-loop thread alone: one core at most
    stats = result.stats
    tasks = per_direction * len(spec.seed_directions)
    rejected = result.counts.get("rejected", {})
    # "While generating": from the first request sent to the last answer received, the span in
    # which the provider is kept busy (what the plain loop's figure measures too); the whole run
    # adds start-up and the final rewrite of the journals, the dataset export and the manifest.
    span = stats.provider_span_s or wall
    return {
        "requests": stats.requests,
        "conversations": tasks,
        "wall_s": wall,
        "generation_s": span,
        "rps": stats.requests / span,
        "whole_run_rps": stats.requests / wall,
        "cpu_ms_per_request": 1000 * (cpu + children) / max(1, stats.requests),
        "pool_cpu_ms_per_request": 1000 * children / max(1, stats.requests),
        "loop_cpu_ms_per_request": 1000 * loop_cpu / max(1, stats.requests),
        "validation_processes": "auto" if validation_processes is None else validation_processes,
        "outcomes": {"accepted": result.dataset_records, **{f"rejected:{k}": v for k, v in rejected.items()}},
        "accounted": result.dataset_records + sum(rejected.values()),
        "retries": stats.retries,
        "errors": dict(stats.errors),
    }


# --- phase 2c: start-up ------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


async def startup_phase(server: Any, folder: Path, runs: int = 5) -> dict[str, Any]:
    """Process start to first request: ``python -m fountain run`` in a fresh process against the
    mock server, from just before the process is spawned to the server receiving the first
    request (import, spec load and checks, plan, provider and cache set-up). The median of
    ``runs`` warm starts, each into a new output folder, after one cold start (reported apart).

    As an installed fountain runs: Python's bytecode caches are written (into a folder of their
    own, ``PYTHONPYCACHEPREFIX``, even where ``PYTHONDONTWRITEBYTECODE`` is set, as in a
    development shell) and fountain's user cache folder (``XDG_CACHE_HOME``: Lark's grammar
    analysis, the diagram parse cache) starts empty, so the first start is a cold one."""
    spec_dir = _bench_spec(folder)
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "OPENAI_API_KEY": "benchmark",
        "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
        "XDG_CACHE_HOME": str(folder / "user-cache"),
    }
    seconds: list[float] = []
    cpu: list[float] = []  # CPU time of each whole child run (a load-independent upper bound)
    for i in range(runs + 1):
        await server.call("POST", "/__mock__/reset")
        await server.call("POST", "/__mock__/configure", {"latency_ms": 1, "record": False})
        command = [
            sys.executable, "-m", "fountain", "run", "--target-folder", str(spec_dir),
            "--output", str(folder / f"out{i}"), "--provider", "openai", "--model", "mock-model",
            "--base-url", server.url + "/v1", "--mode", "json", "--seeds-per-direction", "1",
            "--derivations-per-direction", "0", "--quiet",
        ]  # fmt: skip
        started = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"fountain run failed: {done.stderr[-2000:]}")
        first = (await server.call("GET", "/__mock__/stats"))["first_received_at"]
        seconds.append(first - started)
    return {
        "runs": runs,
        "median_s": _median(seconds[1:]),
        "all_s": seconds[1:],
        "cold_s": seconds[0],
        "whole_run_cpu_median_s": _median(cpu[1:]),
    }


# --- phase 3: memory ----------------------------------------------------------------------------------------


def _sample(i: int):
    from fountain.types import Provenance, Sample, Turn, Usage

    turns = tuple(
        Turn(
            f"User line {i}.{t}: how do we split the rent fairly this month?",
            f"Assistant line {i}.{t}: list the fixed costs first, then agree "
            f"on a rule both of you can check every month.",
        )
        for t in range(3)
    )
    return Sample(
        f"s{i}",
        turns,
        Provenance(
            kind="seed",
            direction="budget",
            category="counsel",
            provider="openai",
            model="mock-model",
            usage=Usage(300, 200),
        ),
    )


def memory_phase(records: int) -> dict[str, Any]:
    """Journal -> export (fresh process): ``records`` samples appended to ``seeds.jsonl`` (fsync
    by group commit, as a run does), then streamed back (each record checked as a sample, as a
    resume does) and exported as ``dataset.jsonl`` with a system message added, as the engine's
    final phase does. Peak RSS is sampled after each step."""
    from fountain.run.export import export_lines
    from fountain.run.journal import Journal, scan_journal
    from fountain.types import Sample

    baseline_mb = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        with Journal(folder / "seeds.jsonl") as journal:
            for i in range(records):
                journal.append(_sample(i).to_record())
        written_mb = peak_rss_mb()

        def lines():
            for line in scan_journal(folder / "seeds.jsonl"):
                Sample.from_record(line.record)
                yield line.raw

        path, exported = export_lines(lines(), folder, "messages", system_message="You are a counselor.")
        size_mb = (folder / "seeds.jsonl").stat().st_size / 1e6
        dataset_mb = path.stat().st_size / 1e6
    return {
        "kind": "journal",
        "records": records,
        "exported": exported,
        "journal_mb": size_mb,
        "dataset_mb": dataset_mb,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_write_mb": written_mb,
        "rss_at_start_mb": baseline_mb,
        "seconds": time.perf_counter() - start,
    }


class InstantProvider:
    """A stand-in provider for the engine memory phase: answers at once with a conversation made
    from the request's schema (the mock server's generator), keeps nothing per request."""

    name = "openai"
    model = "mock-model"

    def __init__(self) -> None:
        import random

        self._rng = random.Random(1)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model}

    async def complete(self, request):
        from fountain.providers.base import Completion
        from fountain.testing.mock_answers import instance_from_schema
        from fountain.types import Usage

        data = instance_from_schema(request.schema, self._rng)
        return Completion(
            text=json.dumps(data), data=data, finish_reason="stop", usage=Usage(300, 200), model=self.model
        )

    async def aclose(self) -> None:
        pass


def engine_memory_phase(records: int) -> dict[str, Any]:
    """The whole engine (fresh process): ``fountain run`` of samples/marriage_counsel with about
    ``records`` seed conversations (json mode, cache and fsync on) against an instant in-process
    provider, so the run is as large as wanted in little time. Peak RSS of the whole run."""
    import shutil

    import yaml

    from fountain import generate_async
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec

    baseline_mb = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec_dir = folder / "spec"
        shutil.copytree(HERE.parent / "samples" / "marriage_counsel", spec_dir, ignore=shutil.ignore_patterns("output"))
        setup = spec_dir / "setup.yaml"
        data = yaml.safe_load(setup.read_text())
        data.setdefault("raters", {})["dedup"] = {"enabled": False}  # as in engine_phase
        setup.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        spec = load_spec(spec_dir)
        per_direction = max(1, records // len(spec.seed_directions))
        options = RunOptions(
            output=folder / "out",
            seed=1,
            concurrency=256,
            mode="json",
            seeds_per_direction=per_direction,
            derivations_per_direction=0,
            quiet=True,
        )
        start = time.perf_counter()
        result = aio.run(generate_async(spec, options, provider=InstantProvider()))
        sizes = {
            name: (folder / "out" / name).stat().st_size / 1e6
            for name in ("seeds.jsonl", "dataset.jsonl", "cache.sqlite")
        }
    return {
        "kind": "engine",
        "records": result.dataset_records,
        "peak_rss_mb": peak_rss_mb(),
        "rss_at_start_mb": baseline_mb,
        "seconds": time.perf_counter() - start,
        "files_mb": sizes,
    }


def run_memory(kind: str, records: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-only", kind, "--records", str(records)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"memory phase ({kind}, {records} records) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- driver -------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from fountain.generation.rules import Rules
    from fountain.generation.shape import request_schema

    server = Server(args.latency_ms, args.jitter_ms)
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "cpus": os.cpu_count(),
        "event_loop": aio.loop_name(),
    }
    try:
        schema = request_schema(Rules(min_turns=1, max_turns=8))
        if not args.skip_baseline:
            await server.call("POST", "/__mock__/configure", {"error_rate": 0.0, "record": False})
            results["baseline"] = await server.measured(baseline(server.url, args.requests, args.concurrency, schema))
        rates = dict(item.split("=", 1) for item in args.fault)
        await server.call("POST", "/__mock__/reset")  # counters (and options: set them again)
        await server.call(
            "POST",
            "/__mock__/configure",
            {
                "latency_ms": args.latency_ms,
                "jitter_ms": args.jitter_ms,
                "error_rate": args.error_rate,
                "fault_rates": {k: float(v) for k, v in rates.items()},
                "record": False,
                "retry_after": args.retry_after,
                "timeout_s": 5.0,
                "seed": 1,
            },
        )
        with tempfile.TemporaryDirectory() as tmp:
            results["fountain"] = await fountain_phase(
                server.url,
                args.requests,
                args.concurrency,
                Path(tmp),
                use_cache=not args.no_cache,
                timeout_s=args.timeout_s,
                validate=not args.no_validate,
                journal_lines=not args.no_journal,
                fsync=not args.no_fsync,
            )
        results["server"] = await server.call("GET", "/__mock__/stats")
        if args.engine:
            await server.call("POST", "/__mock__/reset")
            await server.call(
                "POST",
                "/__mock__/configure",
                {
                    "latency_ms": args.latency_ms,
                    "jitter_ms": args.jitter_ms,
                    "record": False,
                    "error_rate": args.error_rate,
                    "retry_after": args.retry_after,
                    "timeout_s": 5.0,
                },
            )
            with tempfile.TemporaryDirectory() as tmp:
                results["engine"] = await server.measured(
                    engine_phase(
                        server.url,
                        args.requests,
                        args.concurrency,
                        Path(tmp),
                        fsync=not args.no_fsync,
                        validation_processes=args.validation_processes,
                    )
                )
        if args.startup:
            with tempfile.TemporaryDirectory() as tmp:
                results["startup"] = await startup_phase(server, Path(tmp))
    finally:
        server.stop()
    results["client_peak_rss_mb"] = peak_rss_mb()
    if args.records:
        # A tenth of the records and all of them: flat memory means the same peak for both.
        results["memory"] = [run_memory("journal", max(1, args.records // 10)), run_memory("journal", args.records)]
        if args.engine_memory:
            results["memory"] += [run_memory("engine", max(1, args.records // 10)), run_memory("engine", args.records)]
    return results


def budget_lines(results: dict[str, Any]) -> list[str]:
    """Where the engine's time goes on this machine: the event-loop thread's ceiling (one core) and
    the cores that client and server together would need at the target rate (they share them)."""
    b, e, cpus = results.get("baseline"), results.get("engine"), results.get("cpus") or 1
    if not b or not e or "server_cpu_ms_per_request" not in e:
        return []
    loop_ms = e["loop_cpu_ms_per_request"]
    ceiling = 1000 / loop_ms if loop_ms else float("inf")
    lines = [
        f"CPU budget ({cpus} CPU(s) shared by client and mock server):",
        f"  engine event-loop thread: {loop_ms:.3f} ms CPU/request, so at most {ceiling:,.0f} requests/s "
        f"from that one thread ({ceiling / b['rps']:.0%} of the plain loop)",
    ]
    for label, phase, rate in (
        ("plain loop", b, b["rps"]),
        (f"engine at {TARGET_RATIO:.0%} of the plain loop", e, TARGET_RATIO * b["rps"]),
    ):
        if "server_cpu_ms_per_request" not in phase:
            continue
        client, server = phase["cpu_ms_per_request"], phase["server_cpu_ms_per_request"]
        cores = (client + server) * rate / 1000
        lines.append(
            f"  {label}: client {client:.3f} + server {server:.3f} ms CPU/request; at {rate:,.0f} requests/s "
            f"that is {cores:.2f} cores of this machine's {cpus}"
        )
    return lines


def report(results: dict[str, Any]) -> None:
    settings = results["settings"]
    ideal = settings["concurrency"] / (settings["latency_ms"] / 1000) if settings["latency_ms"] else None
    f = results["fountain"]
    print(
        f"machine: {results['cpus']} CPU(s); mock server in a separate process; event loop: "
        f"{results.get('event_loop', 'asyncio')}"
    )
    print(
        f"{settings['requests']:,} requests, concurrency {settings['concurrency']}, latency "
        f"{settings['latency_ms']:g} ms (jitter {settings['jitter_ms']:g}), error rate "
        f"{settings['error_rate']:g}" + (f", faults {settings['fault']}" if settings["fault"] else "")
    )
    if ideal:
        print(f"ideal (concurrency / latency): {ideal:,.0f} requests/s")
    b = results.get("baseline")
    if b:
        print(
            f"plain aiohttp loop: {b['rps']:,.0f} requests/s"
            + (f" ({b['rps'] / ideal:.0%} of ideal)" if ideal else "")
            + f", {b['cpu_ms_per_request']:.3f} ms CPU/request"
        )
    print(
        f"fountain:           {f['rps']:,.0f} requests/s"
        + (f" ({f['rps'] / ideal:.0%} of ideal)" if ideal else "")
        + (f", {f['rps'] / b['rps']:.0%} of the plain loop" if b else "")
        + f", {f['cpu_ms_per_request']:.3f} ms CPU/request"
    )
    print(
        f"  provider calls {f['provider_calls']:,}, retries {f['retries']:,}, errors {f['errors']}, "
        f"concurrency limit at the end {f['final_concurrency_limit']}"
    )
    print(f"  outcomes: {f['outcomes']}  (accounted {f['accounted']:,} of {f['requests']:,})")
    print(f"  server saw: {results['server']}")
    e = results.get("engine")
    if e:
        print(
            f"engine (fountain run, json mode, validation processes: {e['validation_processes']}): "
            f"{e['rps']:,.0f} requests/s while generating"
            + (f" ({e['rps'] / ideal:.0%} of ideal)" if ideal else "")
            + (f", {e['rps'] / b['rps']:.0%} of the plain loop" if b else "")
            + f", {e['cpu_ms_per_request']:.3f} ms CPU/request (whole run"
            + (
                f"; {e['pool_cpu_ms_per_request']:.3f} of it in validation processes)"
                if e["pool_cpu_ms_per_request"]
                else ")"
            )
        )
        print(
            f"  whole run {e['whole_run_rps']:,.0f} requests/s: {e['wall_s']:.2f} s, of which "
            f"{e['wall_s'] - e['generation_s']:.2f} s start-up and final export; "
            f"{e['conversations']:,} conversations: {e['outcomes']}, retries {e['retries']}"
        )
    for line in budget_lines(results):
        print(line)
    s = results.get("startup")
    if s:
        met = "MET" if s["median_s"] < STARTUP_TARGET_S else "NOT MET"
        print(
            f"start-up (process start to first request, median of {s['runs']} warm starts): {s['median_s']:.3f} s "
            f"(target < {STARTUP_TARGET_S} s: {met}; all: {', '.join(f'{x:.3f}' for x in s['all_s'])}; "
            f"the cold first start: {s['cold_s']:.3f} s)"
        )
        print(
            f"  CPU time of the whole child run (start-up, 2 conversations, export; median): "
            f"{s['whole_run_cpu_median_s']:.3f} s"
        )
    print(f"client peak RSS: {results['client_peak_rss_mb']:.0f} MB")
    memory = results.get("memory") or []
    for m in memory:
        if m["kind"] == "journal":
            print(
                f"memory, journal -> export: {m['records']:,} records ({m['journal_mb']:.0f} MB of JSONL): "
                f"peak RSS {m['peak_rss_mb']:.0f} MB (after writing {m['rss_after_write_mb']:.0f} MB), "
                f"{m['seconds']:.1f} s"
            )
        else:
            print(
                f"memory, whole engine (instant provider): {m['records']:,} records: peak RSS "
                f"{m['peak_rss_mb']:.0f} MB, {m['seconds']:.1f} s"
            )
    print("targets:")
    for label, phase in (("request path", f), ("whole engine", e)):
        if not phase:
            continue
        if ideal:
            ratio_ideal = phase["rps"] / ideal
            line = (
                f"  throughput >= {TARGET_RATIO:.0%} of ideal ({label}"
                + (", while generating" if phase is e else "")
                + f"): {ratio_ideal:.0%}"
            )
            if b:
                line += f"; against the plain loop on this machine: {phase['rps'] / b['rps']:.0%}"
            met = ratio_ideal >= TARGET_RATIO or (b is not None and phase["rps"] / b["rps"] >= TARGET_RATIO)
            print(line + ("  MET" if met else "  NOT MET"))
        if phase is e and b:
            whole = e["whole_run_rps"] / b["rps"]
            print(
                f"  whole run (start-up and export included) >= {TARGET_RATIO:.0%} of the plain loop: "
                f"{whole:.0%}  {'MET' if whole >= TARGET_RATIO else 'NOT MET'}"
            )
        cpu = phase["cpu_ms_per_request"]
        print(
            f"  CPU < {TARGET_CPU_MS:g} ms/request ({label}): {cpu:.3f} ms  "
            f"{'MET' if cpu < TARGET_CPU_MS else 'NOT MET'}"
        )
    for kind in ("journal", "engine"):
        runs = [m for m in memory if m["kind"] == kind]
        if runs:
            small, large = runs[0], runs[-1]
            print(
                f"  RSS < {TARGET_RSS_MB:g} MB at {large['records']:,} records ({kind}): "
                f"{large['peak_rss_mb']:.0f} MB (at {small['records']:,}: {small['peak_rss_mb']:.0f} MB)  "
                f"{'MET' if large['peak_rss_mb'] < TARGET_RSS_MB else 'NOT MET'}"
            )
    every = f["accounted"] == f["requests"] and (not e or e["accounted"] == e["conversations"])
    print(f"  every request accepted or rejected with a reason: {'yes' if every else 'NO'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fountain throughput benchmark (see the module docstring)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of requests failing, spread over 429/500/timeout/malformed"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE",
        help="rate of one fault (429, 500, timeout, malformed, 400, ...); repeatable",
    )
    parser.add_argument("--retry-after", default="1", help="Retry-After sent with an injected 429")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="client timeout per request")
    parser.add_argument("--records", type=int, default=100_000, help="records for the memory phase (0 skips it)")
    parser.add_argument("--no-cache", action="store_true", help="run the fountain phase without the cache")
    parser.add_argument(
        "--no-validate", action="store_true", help="breakdown: skip validation and journal writes in the fountain phase"
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="journal lines never fsynced (a kill -9 cannot lose them anyway; only a power loss can)",
    )
    parser.add_argument("--no-journal", action="store_true", help="breakdown: validate but do not write journal lines")
    parser.add_argument(
        "--engine", action="store_true", help="also run the whole engine (fountain run on samples/marriage_counsel)"
    )
    parser.add_argument(
        "--validation-processes",
        type=int,
        default=None,
        help="the engine's --validation-processes (default: fountain's choice, none below 4 CPUs)",
    )
    parser.add_argument(
        "--engine-memory",
        action="store_true",
        help="also measure the whole engine's peak RSS at a tenth of --records and at "
        "--records (an instant in-process provider instead of the server)",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--startup", action="store_true", help="also time process start to first request")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--memory-only", choices=("journal", "engine"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_only:
        phase = memory_phase if args.memory_only == "journal" else engine_memory_phase
        print(json.dumps(phase(args.records)))
        return
    results = aio.run(run(args))
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
