"""`fountain run --batch` against `fountain run` (direct), both on the loopback mock server.

Runs the same spec twice as real `fountain` processes against one mock (OpenAI API): once
directly, once with ``--batch --batch-wait --batch-poll 0`` (jobs end at their first poll). The
mock answers a batch line exactly as it answers the same body sent directly, so both runs must
write the same dataset. Prints wall time, direct requests, batch jobs and lines, and whether the
datasets are equal.

    python benchmarks/bench_batch.py                 # 200 seeds, 1 derivation per direction
    python benchmarks/bench_batch.py --seeds 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
category: marriage counsel
type: conversation
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a conversation between {{ user_role }} and {{ assistant_role }}.
  {{ direction_instructions }}
derivational_prompt: |
  Continue: {{ conversation_json }}
  {{ direction_instructions }}
seed_evolving_directions: [general]
derivational_evolving_directions: [in-depth]
generation:
  max_turns: 4
raters:
  dedup:
    embedding_threshold: null
"""
DIAGRAM = 'erDiagram\n    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per direction")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from fountain.testing.mock_server import start_in_thread

    server = start_in_thread()
    work = Path(tempfile.mkdtemp(prefix="fountain-bench-batch-"))
    spec = work / "spec"
    spec.mkdir()
    (spec / "setup.yaml").write_text(SPEC)
    (spec / "diagram.mermaid").write_text(DIAGRAM)
    env = dict(os.environ, OPENAI_API_KEY="sk-bench", PYTHONPATH=str(ROOT / "src"))
    for name in ("FOUNTAIN_PROVIDER", "FOUNTAIN_MODEL", "FOUNTAIN_BASE_URL"):
        env.pop(name, None)

    def run(out: Path, *extra: str) -> float:
        command = [
            sys.executable, "-m", "fountain", "run", "--target-folder", str(spec), "--output", str(out),
            "--provider", "openai", "--model", "mock-model", "--base-url", server.openai_base_url,
            "--seeds-per-direction", str(args.seeds), "--derivations-per-direction", "1", "--seed", "3",
            "--quiet", *extra,
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"fountain exited {done.returncode}: {done.stderr[-500:]}")
        return time.monotonic() - started

    direct_s = run(work / "direct")
    direct_requests = server.state.received
    server.reset()
    batch_s = run(work / "batch", "--batch", "--batch-wait", "--batch-poll", "0")
    batch = server.state.batch
    same = sorted((work / "direct" / "dataset.jsonl").read_text().splitlines()) == sorted(
        (work / "batch" / "dataset.jsonl").read_text().splitlines()
    )
    print(f"direct: {direct_s:.1f} s, {direct_requests:,} direct requests")
    print(
        f"batch:  {batch_s:.1f} s, {server.state.received:,} direct requests, {len(batch.created)} jobs, "
        f"{len(batch.lines_submitted):,} lines ({len(set(batch.lines_submitted)):,} distinct)"
    )
    print(f"same dataset: {same}")
    server.stop()


if __name__ == "__main__":
    main()
