"""The plan of a run: which seed and derivation tasks exist, with stable ids.

A task id is a hash of what the task is (kind, direction, index, parent id, prefix length,
persona), never of when it ran, so a second run of the same spec finds the same ids in the output
folder's journals and skips what is done (resume). A sample's id is its task's id.

- seeds: every seed direction x ``seeds_per_direction`` (x the number of personas when the spec
  has any: seed k of a direction takes persona k mod len(personas), so each persona gets
  ``seeds_per_direction`` seeds in every direction);
- derivations (conversation type): for every accepted seed of n turns, every prefix of 1..n turns
  (capped by ``max_prefix_turns``) x every derivational direction x ``derivations_per_direction``;
- derivations (instruct type): the seed pair is the example, so no prefixes: every derivational
  direction x ``derivations_per_direction`` per seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from fountain.spec.directions import distinct_directions

SEED = "seed"
DERIVATION = "derivation"


@dataclass(frozen=True)
class Task:
    """One conversation to generate. ``order`` sorts tasks in plan order (output files use it)."""

    id: str
    kind: str  # "seed" | "derivation"
    direction: str
    index: int  # index within the direction (seeds) or within (parent, prefix, direction)
    persona: str | None = None
    parent_id: str | None = None
    prefix_turns: int = 0
    order: tuple[int, ...] = ()


def task_id(
    kind: str,
    direction: str,
    index: int,
    parent_id: str | None = None,
    prefix_turns: int = 0,
    persona: str | None = None,
) -> str:
    """The stable id of a task (and of the sample it produces)."""
    material = json.dumps(
        [kind, direction, index, parent_id, prefix_turns, persona], ensure_ascii=False, separators=(",", ":")
    )
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]
    return f"{'s' if kind == SEED else 'd'}-{digest}"


def seed_tasks(
    directions: Sequence[str], seeds_per_direction: int, personas: Sequence[str] = (), *, first_index: int = 0
) -> list[Task]:
    """The seed tasks in plan order; sample indices from ``first_index`` (Filter's later rounds
    plan fresh indices, so their ids and cache keys differ from every other round's)."""
    tasks = []
    per_direction = seeds_per_direction * max(1, len(personas))
    for d, direction in enumerate(distinct_directions(directions)):
        for index in range(first_index, first_index + per_direction):
            persona = personas[index % len(personas)] if personas else None
            tasks.append(
                Task(
                    task_id(SEED, direction, index, None, 0, persona),
                    SEED,
                    direction,
                    index,
                    persona,
                    None,
                    0,
                    (d, index),
                )
            )
    return tasks


def prefix_lengths(turns: int, max_prefix_turns: int | None, conversation_type: str) -> list[int]:
    """Prefix lengths a seed of ``turns`` turns derives from (``[0]`` for instruct: no prefix)."""
    if conversation_type == "instruct":
        return [0]
    top = turns if not max_prefix_turns else min(turns, max_prefix_turns)
    return list(range(1, top + 1))


def derivation_tasks(
    parent_id: str,
    parent_turns: int,
    parent_order: tuple[int, ...],
    directions: Sequence[str],
    derivations_per_direction: int,
    *,
    persona: str | None = None,
    max_prefix_turns: int | None = None,
    conversation_type: str = "conversation",
) -> list[Task]:
    """The derivation tasks of one accepted seed, in plan order."""
    tasks = []
    for prefix in prefix_lengths(parent_turns, max_prefix_turns, conversation_type):
        for d, direction in enumerate(distinct_directions(directions)):
            for index in range(derivations_per_direction):
                tasks.append(
                    Task(
                        task_id(DERIVATION, direction, index, parent_id, prefix, persona),
                        DERIVATION,
                        direction,
                        index,
                        persona,
                        parent_id,
                        prefix,
                        (*parent_order, prefix, d, index),
                    )
                )
    return tasks


def count_derivations(
    seed_turns: Sequence[int],
    directions: int,
    derivations_per_direction: int,
    *,
    max_prefix_turns: int | None = None,
    conversation_type: str = "conversation",
) -> int:
    """How many derivation tasks seeds of these turn counts imply."""
    per_prefix = directions * derivations_per_direction
    return sum(len(prefix_lengths(n, max_prefix_turns, conversation_type)) * per_prefix for n in seed_turns)
