"""The run tests' spec folder (the counselling scene with two seed and two derivational
directions), options and a JSONL reader."""

from __future__ import annotations

import json
from pathlib import Path

import spec_helpers
from fountain.run.options import RunOptions

SETUP = """\
category: marriage counsel
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a conversation between {{ user_role }} and {{ assistant_role }}.
  {{ scene }}
  {{ direction_instructions }}
derivational_prompt: |
  Continue: {{ conversation_json }}
  {{ direction_instructions }}
output_format: '{"conversations": [{"user": "...", "assistant": "..."}]}'
seed_evolving_directions: [general, concretize]
derivational_evolving_directions: [in-depth, breadth]
generation:
  seeds_per_direction: 2
  derivations_per_direction: 1
  min_turns: 1
  max_turns: 3
"""


def make_spec(root: Path, setup: str = SETUP, name: str = "spec") -> Path:
    """The counselling spec folder (``setup`` defaults to :data:`SETUP`) under ``root``."""
    return spec_helpers.make_spec(root, setup, name=name)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def options(out: Path, **kw) -> RunOptions:
    kw.setdefault("seed", 1)
    kw.setdefault("fsync", False)
    return RunOptions(output=out, quiet=True, **kw)


def run_round(spec, opts: RunOptions, provider):
    """One engine round exactly as the framework runner drives it (RoundEngine: journals and
    manifest, no export): for tests of what a round hands the runner (its samples, its manifest)."""
    from fountain import aio
    from fountain.frameworks.rounds import RoundEngine
    from fountain.run.options import effective_spec

    return aio.run(RoundEngine(effective_spec(spec, opts), opts, provider, source_spec=spec).run())
