"""The Ray executor against the local one, on a local Ray with 2 generation actors.

Both run the same spec against the loopback mock OpenAI server (answers after ``--latency-ms``),
with the same total concurrency. Reported: wall time of each, their ratio (Ray / local), whether
the same ratio over the span from the first request to the last answer (without starting the
actors), whether the two datasets hold the same conversations, and, in a second pair of runs with ``--rpm``, the
request rate the mock server saw (first to last request), which must stay under the limit for the
whole cluster, not per actor.

    python benchmarks/ray_executor.py                       # 40 seeds + 40 derivations, 200 ms
    python benchmarks/ray_executor.py --seeds 100 --latency-ms 500 --concurrency 32 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fountain import generate
from fountain.run.options import RunOptions
from fountain.spec.load import load_spec
from fountain.testing.mock_server import start_in_thread

SETUP = """\
category: marriage counsel
type: conversation
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a conversation between {{{{ user_role }}}} and {{{{ assistant_role }}}}.
  {{{{ scene }}}}
  {{{{ direction_instructions }}}}
derivational_prompt: |
  Continue: {{{{ conversation_json }}}}
  {{{{ direction_instructions }}}}
seed_evolving_directions:
  - general
derivational_evolving_directions:
  - in-depth
generation:
  seeds_per_direction: {seeds}
  derivations_per_direction: 1
  max_turns: 4
raters:
  dedup:
    embedding_threshold: null
"""
DIAGRAM = 'erDiagram\n    COUNSELOR ||--|{ COUNSELEE : "counsels"\n'


def _spec(root: Path, seeds: int):
    folder = root / "spec"
    folder.mkdir()
    (folder / "setup.yaml").write_text(SETUP.format(seeds=seeds))
    (folder / "diagram.mermaid").write_text(DIAGRAM)
    return load_spec(folder)


def _conversations(folder: Path) -> list[str]:
    lines = (folder / "dataset.jsonl").read_text().splitlines()
    return sorted(json.dumps(json.loads(line)["messages"], sort_keys=True) for line in lines)


def _one(spec, root: Path, name: str, server, **options) -> tuple[float, int, float]:
    """(wall seconds, dataset records, seconds from the first request sent to the last answer)."""
    server.reset_counts()
    started = time.monotonic()
    result = generate(
        spec,
        RunOptions(
            output=root / name,
            provider="openai",
            model="m",
            base_url=server.openai_base_url,
            seed=1,
            quiet=True,
            no_cache=True,
            **options,
        ),
    )
    return time.monotonic() - started, result.dataset_records, result.stats.provider_span_s


class _Server:
    def __init__(self, latency_ms: float):
        self.handle = start_in_thread(latency_ms=latency_ms)
        self.latency_ms = latency_ms

    @property
    def openai_base_url(self) -> str:
        return self.handle.openai_base_url

    def reset_counts(self) -> None:
        self.handle.reset()
        self.handle.configure(latency_ms=self.latency_ms)

    def rate_per_minute(self) -> float:
        times = sorted(r.received_at for r in self.handle.requests)
        return (len(times) - 1) / (times[-1] - times[0]) * 60 if len(times) > 1 else 0.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--rpm", type=float, default=120.0)
    parser.add_argument("--rpm-seeds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import ray

    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start_s = time.monotonic() - started
    server = _Server(args.latency_ms)
    out: dict = {"ray_start_s": round(ray_start_s, 2), **vars(args)}
    out.pop("json")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            spec = _spec(root, args.seeds)
            local_s, local_n, local_span = _one(spec, root, "local", server, concurrency=args.concurrency)
            ray_s, ray_n, ray_span = _one(
                spec, root, "ray", server, concurrency=args.concurrency, executor="ray", ray_actors=args.actors
            )
            out.update(
                local_s=round(local_s, 2),
                ray_s=round(ray_s, 2),
                ratio_ray_to_local=round(ray_s / local_s, 2),
                # without start-up (Ray, the actors) and the final export: the generation itself
                local_span_s=round(local_span, 2),
                ray_span_s=round(ray_span, 2),
                span_ratio_ray_to_local=round(ray_span / local_span, 2) if local_span else None,
                records=[local_n, ray_n],
                same_conversations=_conversations(root / "local") == _conversations(root / "ray"),
            )
            (root / "rpm").mkdir()
            rpm_spec = _spec(root / "rpm", args.rpm_seeds)
            rates = {}
            for name, executor in (("local", None), ("ray", "ray")):
                _one(
                    rpm_spec,
                    root / "rpm",
                    name,
                    server,
                    concurrency=args.concurrency,
                    rpm=args.rpm,
                    executor=executor,
                    ray_actors=args.actors,
                )
                rates[name] = round(server.rate_per_minute(), 1)
            out["rpm_limit"] = args.rpm
            out["rpm_seen"] = rates
    finally:
        server.handle.stop()
        ray.shutdown()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
