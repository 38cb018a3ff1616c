"""Shared by the framework tests: a deterministic embedder, a spec folder, real data, options."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

import spec_helpers
from fountain.run.options import RunOptions
from spec_helpers import DIAGRAM  # noqa: F401 - re-exported to the framework tests

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
  seeds_per_direction: {seeds}
  derivations_per_direction: {derivations}
  min_turns: 1
  max_turns: 3
# These tests plant exact and near copies and scripted answers to test rating and dedup; the
# quality gates (tested in tests/generation/test_gates.py) would reject them first.
quality:
  enabled: false
"""


class HashEmbedder:
    """A bag-of-words embedder: each word hashed to a signed bucket; L2-normalised. Texts with
    the same words embed identically; texts sharing no word are nearly orthogonal."""

    name = "test-hash-bow"
    dim = 512

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                digest = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
                out[row, digest % self.dim] += 1.0 if (digest >> 40) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def make_spec(
    root: Path, *, seeds: int = 1, derivations: int = 1, setup: str | None = None, name: str = "spec"
) -> Path:
    """The framework tests' spec folder: :data:`SETUP` with ``seeds`` and ``derivations`` filled in."""
    text = (
        setup if setup is not None else SETUP.replace("{seeds}", str(seeds)).replace("{derivations}", str(derivations))
    )
    return spec_helpers.make_spec(root, text, name=name)


def options(out: Path, **kw) -> RunOptions:
    kw.setdefault("seed", 1)
    kw.setdefault("fsync", False)
    kw.setdefault("quiet", True)
    return RunOptions(output=out, **kw)


def conversation(*pairs: tuple[str, str]) -> str:
    """A model answer in the conversation JSON shape."""
    return json.dumps({"conversations": [{"user": u, "assistant": a} for u, a in pairs]})


def real_record(user: str, assistant: str, category: str = "marriage counsel") -> dict:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        "metadata": {"category": category},
    }


def write_real(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def marriage_real(n: int) -> list[dict]:
    """n distinct private conversations about marriage counselling."""
    topics = [
        "money",
        "chores",
        "in-laws",
        "holidays",
        "children",
        "careers",
        "trust",
        "hobbies",
        "friends",
        "sleep",
        "phones",
        "travel",
    ]
    return [
        real_record(
            f"My partner and I keep arguing about {topics[i % len(topics)]} (case {i}). What should we do?",
            f"Let us look at what {topics[i % len(topics)]} means to each of you, then agree on "
            f"one small step for this week (note {i}).",
        )
        for i in range(n)
    ]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
