"""What the quality gates (:mod:`.gates`) and ``fountain report`` know of a spec: the thresholds
(setup.yaml ``quality:``, :class:`Quality`) and the scene (:class:`Scene`: the two roles, the
diagram's facts, who is on the user's side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fountain.generation.facts import Fact, scene_facts


@dataclass(frozen=True)
class Quality:
    """The gates' thresholds (setup.yaml ``quality:``; defaults documented in docs/setup-yaml.md)."""

    enabled: bool = True
    min_words: int = 2  # fewer words in a message: placeholder
    echo: float = 0.5  # share of an earlier message's 4-grams a message may contain
    repetition: float = 0.3  # share of a message's 4-grams that may be repeats of its own
    min_facts: int = 1  # scene facts a conversation must mention (0: no grounding gate)
    gates: tuple[str, ...] = ()  # gates to run; () = all
    skip: tuple[str, ...] = ()  # gates not to run

    @classmethod
    def from_spec(cls, spec: Any) -> Quality:
        data = getattr(spec, "data", None)
        block = data.get("quality") if isinstance(data, dict) else None
        if not isinstance(block, dict):
            return cls()
        base = cls()
        return cls(
            enabled=bool(block.get("enabled", base.enabled)),
            min_words=int(block.get("min_words", base.min_words)),
            echo=float(block.get("echo", base.echo)),
            repetition=float(block.get("repetition", base.repetition)),
            min_facts=int(block.get("min_facts", base.min_facts)),
            gates=tuple(block.get("gates") or ()),
            skip=tuple(block.get("skip") or ()),
        )

    def wants(self, name: str) -> bool:
        return self.enabled and name not in self.skip and (not self.gates or name in self.gates)


@dataclass(frozen=True)
class Scene:
    """What the gates know of the spec: role names and facts."""

    user_role: str = "user"
    assistant_role: str = "assistant"
    facts: tuple[Fact, ...] = ()
    quality: Quality = field(default_factory=Quality)
    # Who belongs to the user's side of the scene (entities related to the user role, and
    # "husband"/"wife"/"spouse" when the user is married): the user says "my partner"; a user line
    # saying "your partner" speaks as the assistant.
    user_relations: tuple[str, ...] = ()

    @cached_property
    def fact_keywords(self) -> frozenset[str]:
        """Every fact's keywords (stems)."""
        return frozenset().union(*(fact.keywords for fact in self.facts))

    @cached_property
    def labels(self) -> tuple[str, str]:
        """The user's and the assistant's role as words, lower-cased ("marriage counselor")."""
        return label_words(self.user_role).lower(), label_words(self.assistant_role).lower()

    @classmethod
    def from_spec(cls, spec: Any) -> Scene:
        return cls.from_diagram(
            getattr(spec, "diagram", None), spec.user_role, spec.assistant_role, Quality.from_spec(spec)
        )

    @classmethod
    def from_diagram(
        cls, diagram: Any, user_role: str | None, assistant_role: str | None, quality: Quality | None = None
    ) -> Scene:
        """The scene of a diagram and two roles: its facts and who is on the user's side (the
        gates and ``fountain report`` read a conversation by the same rules)."""
        return cls(
            user_role or "user",
            assistant_role or "assistant",
            scene_facts(diagram) if diagram is not None else (),
            quality or Quality(),
            user_relations(diagram, user_role, assistant_role),
        )


def user_relations(diagram: Any, user_role: str | None, assistant_role: str | None) -> tuple[str, ...]:
    """Names of the people on the user's side of the scene (see :attr:`Scene.user_relations`)."""
    found: set[str] = set()
    for rel in getattr(diagram, "relationships", ()) or ():
        ends = {rel.left, rel.right}
        if user_role not in ends:
            continue
        for name in ends - {user_role, assistant_role}:
            if name:
                found.add(name.replace("_", " ").lower())
        if "married" in (rel.label or "").lower() or "spouse" in (rel.label or "").lower():
            found |= {"husband", "wife", "spouse"}
    return tuple(sorted(found))


def label_words(role: str) -> str:
    return role.replace("_", " ").strip()
