"""Fuzz the two untrusted inputs at full size: provider answers and spec folders (issue 13).

Every fuzzed answer goes through the real HTTP client to the loopback mock server, which sends it
back as the scripted raw answer; every fuzzed spec folder is written to disk (with a symlink out,
a symlink loop and a FIFO beside it) and loaded. Each must end accepted, rejected with a reason,
or in a located error. Prints the outcome counts, the wall time, the slowest example and the peak
memory (RSS); exits 1 on the first traceback (hypothesis prints the failing example).

    PYTHONPATH=src python benchmarks/fuzz.py                       # 10,000 answers, 5,000 specs
    PYTHONPATH=src python benchmarks/fuzz.py --answers 500 --specs 200
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz_answers(count: int, seed: int) -> tuple[Counter[str], float]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from fountain.providers import create_provider
    from fountain.providers.base import ProviderConfig
    from fountain.providers.cache import ResponseCache
    from fountain.testing.fuzz import answer_outcome, answer_strategy
    from fountain.testing.mock_server import start_in_thread

    os.environ.setdefault("OPENAI_API_KEY", "sk-fuzz-0123456789")
    os.environ["FOUNTAIN_MAX_RETRY_AFTER"] = "0"
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    with start_in_thread() as server, tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()

        async def make():
            return create_provider(
                ProviderConfig(provider="openai", model="m", base_url=server.openai_base_url, timeout_s=10)
            )

        provider = loop.run_until_complete(make())
        cache = ResponseCache(Path(tmp) / "cache.sqlite")

        @hseed(seed)
        @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(answer_strategy())
        def check(answer):
            nonlocal slowest
            server.configure(raw_answers=[answer])
            started = time.perf_counter()
            outcomes[answer_outcome(provider, cache, loop, sum(outcomes.values()))] += 1
            slowest = max(slowest, time.perf_counter() - started)

        check()
        cache.close()
        loop.run_until_complete(provider.aclose())
        loop.close()
    return outcomes, slowest


def fuzz_specs(count: int, seed: int) -> tuple[Counter[str], float]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    from fountain.testing.fuzz import spec_outcome, spec_strategy

    outcomes: Counter[str] = Counter()
    numbers = itertools.count()
    slowest = 0.0
    with tempfile.TemporaryDirectory() as tmp:

        @hseed(seed)
        @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(spec_strategy())
        def check(folder_text):
            nonlocal slowest
            setup, diagram = folder_text
            started = time.perf_counter()
            outcomes[spec_outcome(Path(tmp) / f"s{next(numbers)}", setup, diagram)] += 1
            slowest = max(slowest, time.perf_counter() - started)

        check()
    return outcomes, slowest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--specs", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    for name, run, count in (("answers", fuzz_answers, args.answers), ("specs", fuzz_specs, args.specs)):
        if count <= 0:
            continue
        started = time.perf_counter()
        outcomes, slowest = run(count, args.seed)
        elapsed = time.perf_counter() - started
        print(f"{name}: {sum(outcomes.values()):,} examples in {elapsed:.1f} s (slowest {slowest:.2f} s)")
        for outcome, number in sorted(outcomes.items(), key=lambda item: -item[1]):
            print(f"  {outcome:40} {number:,}")
        print(f"  peak RSS so far: {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
