"""Evolving directions: free-text styles and the named Evol-Instruct operations.

A direction tells the model how a conversation should differ from the others. Any word or phrase is
a free *style*, exactly as the original Auto Data Fountain used it ("diverse", "humorous", ...). A few
names are *operations* borrowed from Evol-Instruct (Xu et al., 2023) and rewritten for dialogue:
in-depth evolving (add constraints, deepen, concretize, increase reasoning) makes the conversation
harder; in-breadth evolving moves to a new, rarer situation of the same scene.

The instructions never use the words of the Evol-Instruct rewriting templates ("#Rewritten Prompt#",
"given prompt"): the elimination rules reject samples that leak them, so the model must not see them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fountain.errors import SpecError

STYLE = "style"
EVOL = "evol"


@dataclass(frozen=True)
class Direction:
    """One direction: ``name`` as written in the spec, what the model is told, and its kind.

    ``kind`` is ``"style"`` (free text) or ``"evol"`` (a named operation, canonical name in
    ``operation``).
    """

    name: str
    instructions: str
    kind: str = STYLE
    operation: str | None = None


# Canonical operation -> instructions. Written for conversations: they apply to a seed (a whole new
# conversation) as well as to a derivation (a continuation of the conversation so far).
OPERATIONS: dict[str, str] = {
    "general": (
        'The direction or the style of the conversation should be "general": an ordinary, typical '
        "exchange for this scene. The user raises a common, realistic concern and the assistant "
        "answers helpfully and naturally, without any unusual twist."
    ),
    "add_constraints": (
        "Make the conversation more demanding by adding one or two concrete constraints or "
        "requirements to what the user asks (for example a deadline, a budget, a limitation, a "
        "preference, or a required format for the answer). The assistant's answers must respect "
        "every constraint. Keep the constraints natural for the scene; do not turn them into a list "
        "of rules."
    ),
    "deepen": (
        "Go deeper instead of wider: the user asks follow-up questions that dig into causes, "
        "consequences and trade-offs of the topic, and the assistant gives answers with more depth, "
        "nuance and detail than a first reply would. Stay on the same topic; do not open new ones."
    ),
    "concretize": (
        "Make the conversation concrete: replace general statements with specific details (names, "
        "numbers, dates, places, real situations and examples). The user describes a particular "
        "case and the assistant's advice refers to those specifics."
    ),
    "increase_reasoning": (
        "Make the conversation require reasoning in several explicit steps: the user's question "
        "cannot be answered at a glance, and the assistant works through it step by step, stating "
        "what it considers, in which order, and why, before giving a conclusion."
    ),
    "breadth": (
        "Take the conversation somewhere new: a different situation that still belongs to this "
        "scene and these roles, but is less common or rarely discussed. It should be about as long "
        "and as difficult as a typical conversation of this scene, and stay realistic."
    ),
}

# Alias (normalised) -> canonical operation.
ALIASES: dict[str, str] = {
    "general": "general",
    "add_constraints": "add_constraints",
    "add_constraint": "add_constraints",
    "constraints": "add_constraints",
    "deepen": "deepen",
    "deepening": "deepen",
    "in_depth": "deepen",
    "depth": "deepen",
    "concretize": "concretize",
    "concretizing": "concretize",
    "increase_reasoning": "increase_reasoning",
    "increase_reasoning_steps": "increase_reasoning",
    "reasoning": "increase_reasoning",
    "breadth": "breadth",
    "in_breadth": "breadth",
}


def normalise(name: str) -> str:
    """Lower case, with runs of hyphens, underscores and spaces folded into one underscore."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


def operation_of(name: str) -> str | None:
    """The canonical Evol-Instruct operation ``name`` refers to, or None for a free style."""
    return ALIASES.get(normalise(name))


def distinct_directions(names: Sequence[str]) -> list[str]:
    """``names`` with aliases of one operation merged (``in-depth`` and ``deepen`` are the same
    prompt: the first spelling is kept), and repeated free styles once: no request is spent twice
    on an identical prompt."""
    kept: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = operation_of(name) or normalise(name) if isinstance(name, str) else name
        if key in seen:
            continue
        seen.add(key)
        kept.append(name)
    return kept


def style_instructions(name: str) -> str:
    """The original project's sentence for a free style."""
    return f'The direction or the style of the conversation should be "{name}".'


def resolve_direction(name: str) -> Direction:
    """Turn a direction name from the spec into a :class:`Direction`.

    A named operation (any case, ``-``/``_``/space interchangeable, aliases included) gets its own
    instructions; any other text is a free style.
    """
    if not isinstance(name, str) or not name.strip():
        raise SpecError(
            "a direction is empty",
            hint=f'write a style such as "formal" or an operation such as {", ".join(sorted(OPERATIONS))}',
        )
    name = name.strip()
    operation = operation_of(name)
    if operation is None:
        return Direction(name, style_instructions(name), STYLE, None)
    return Direction(name, OPERATIONS[operation], EVOL, operation)
