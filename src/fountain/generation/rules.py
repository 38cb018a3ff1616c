"""What validation decides (Accepted, Rejected) and by which rules (Rules: turn bounds, roles, leak words, the quality gates' settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fountain.types import Turn

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec


CONVERSATION = "conversation"
INSTRUCT = "instruct"

# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The answer is usable: ``turns`` are what the model wrote (for a derivation, the continuation)."""

    turns: tuple[Turn, ...]
    ok = True


@dataclass(frozen=True)
class Rejected:
    """The answer is not usable: ``reason`` is a short code, ``detail`` says what was wrong."""

    reason: str
    detail: str
    ok = False


# --- rules -------------------------------------------------------------------------------------

# Template words that must never reach a training conversation (Evol-Instruct's list plus the
# markers of fountain's own prompts). Matched case-insensitively.
LEAK_WORDS: tuple[str, ...] = (
    "#rewritten prompt#",
    "#given prompt#",
    "#created prompt#",
    "rewritten prompt",
    "given prompt",
    "erdiagram",
    "%s",
    "{{",
    "}}",
    "{%",
    "%}",
)


@dataclass(frozen=True)
class Rules:
    """Everything validation needs from a spec (so this module never depends on spec.py)."""

    type: str = CONVERSATION  # "conversation" | "instruct"
    min_turns: int = 1
    max_turns: int = 8
    delimiter: str | None = None
    leak_words: tuple[str, ...] = LEAK_WORDS
    roles: tuple[str, ...] = ()  # role names, stripped from the start of turn-by-turn utterances
    scene: Any = None  # fountain.generation.scene.Scene: the quality gates (None: no gates)

    @classmethod
    def from_spec(
        cls, spec: Spec, *, type: str | None = None, min_turns: int | None = None, max_turns: int | None = None
    ) -> Rules:
        gen = spec.generation
        kind = type or gen.type
        lo = min_turns if min_turns is not None else gen.min_turns
        hi = max_turns if max_turns is not None else gen.max_turns
        if kind == INSTRUCT:
            lo = hi = 1
        lo, hi = max(1, lo), max(1, hi)
        delimiter = (spec.delimiter or "").strip() or None
        from fountain.generation.scene import Scene

        return cls(
            type=kind,
            min_turns=min(lo, hi),
            max_turns=hi,
            delimiter=delimiter,
            roles=tuple(r for r in (spec.user_role, spec.assistant_role) if r),
            scene=Scene.from_spec(spec),
        )

    @property
    def bounds(self) -> tuple[int, int]:
        return (1, 1) if self.type == INSTRUCT else (self.min_turns, self.max_turns)


def _rules(spec_or_rules: Any) -> Rules:
    return spec_or_rules if isinstance(spec_or_rules, Rules) else Rules.from_spec(spec_or_rules)
