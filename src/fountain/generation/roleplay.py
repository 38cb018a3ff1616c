"""Turn-by-turn generation prompts: the model plays the user role, then the assistant role.

Small models write better dialogue one utterance at a time than as a whole JSON conversation
(see ``benchmarks/bench_local_model.py``). Each side gets a short role-play system message built
from the scene (the diagram's description and notes), the two roles, the direction's instructions
and the persona. Each side sees its own earlier lines as ``assistant`` messages and the other
side's lines as ``user`` messages (CAMEL style), so the model always answers "as itself". Only
the last few turns are shown: a 135M model loses the thread in long contexts, and short prompts
are faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fountain.providers.base import Message, Sampling
from fountain.types import Turn

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

HISTORY_TURNS = 3
SCENE_MAX_CHARS = 1200
# Completion budgets per utterance (tokens): a user line is short, an answer longer; instruct
# asks for one long paragraph on each side.
USER_MAX_TOKENS = 96  # 64 cut one long sentence of the 135M model's in two too often (gate:cut_off)
ASSISTANT_MAX_TOKENS = 160
INSTRUCT_USER_MAX_TOKENS = 180
INSTRUCT_ASSISTANT_MAX_TOKENS = 360


def role_name(role: str) -> str:
    """How a role is named in prose: ``MARRIAGE_COUNSELOR`` -> ``marriage counselor``."""
    text = role.replace("_", " ").strip()
    return text.lower() if text.isupper() else text


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if not text or text[-1] in ".!?" else text + "."


def scene_prose(diagram: Any, me: str | None = None, *, others_attributes: bool = True) -> str:
    """The diagram as a few plain sentences: relationships, described attributes, notes.

    A small model follows prose far better than a structured listing: ``COUNSELOR ||--|{
    COUNSELEE : "provides counseling to"`` becomes "The counselor provides counseling to the
    counselee."; an attribute is mentioned only when its comment gives it a value. ``me`` (an
    entity name) is the one the reader plays: "... provides counseling to you", "Your concern: ..."
    (not "the counselee (you)": the small model copied that into its lines); without
    ``others_attributes`` only the reader's own attributes are told (the user side does not need
    the counselor's name and years of practice, and a small model parrots what it is told).
    """

    def who(name: str) -> str:
        return "you" if name == me else f"the {role_name(name)}"

    sentences: list[str] = []
    for attr in ("title", "acc_title", "acc_descr"):
        value = getattr(diagram, attr, None)
        if value:
            sentences.append(_sentence(value))
            break
    for rel in getattr(diagram, "relationships", ()):
        verb = rel.label or "is related to"
        right = who(rel.right)
        if rel.left == me:
            verb = _second_person(verb)
            right = right.replace("the ", "your ", 1)  # "You are married to your partner."
        text = f"{who(rel.left)} {verb} {right}"
        sentences.append(_sentence(text[0].upper() + text[1:]))
    entity = getattr(diagram, "entity", None)
    for name in getattr(diagram, "entities", ()):
        try:
            attributes = entity(name).attributes if callable(entity) else ()
        except KeyError:
            attributes = ()
        if name != me and not others_attributes:
            continue
        for attribute in attributes:
            if attribute.comment:
                what = attribute.name.replace("_", " ")
                owner = "Your" if name == me else f"The {role_name(name)}'s"
                sentences.append(_sentence(f"{owner} {what}: {attribute.comment}"))
    sentences.extend(_sentence(note) for note in getattr(diagram, "notes", ()) if note.strip())
    return " ".join(s for s in sentences if s)


_SECOND_PERSON = {"is": "are", "was": "were", "has": "have", "does": "do"}


def _second_person(verb: str) -> str:
    """A relationship label's verb with "you" as its subject: "is married to" -> "are married to",
    "provides counseling to" -> "provide counseling to", "teaches" -> "teach"."""
    first, _, rest = verb.partition(" ")
    low = first.lower()
    if low in _SECOND_PERSON:
        first = _SECOND_PERSON[low]
    elif low.endswith("ies") and len(low) > 4:
        first = first[:-3] + "y"
    elif low.endswith(("ches", "shes", "sses", "xes")):
        first = first[:-2]
    elif low.endswith("s") and not low.endswith(("ss", "us")) and len(low) > 3:
        first = first[:-1]
    return f"{first} {rest}".strip()


def scene_text(spec: Spec, me: str | None = None, *, others_attributes: bool = True) -> str:
    """A short plain-text description of the scene, from the diagram (arguments: see scene_prose)."""
    text = ""
    diagram = getattr(spec, "diagram", None)
    if diagram is not None:
        try:
            text = scene_prose(diagram, me, others_attributes=others_attributes)
        except (AttributeError, TypeError):  # a diagram-like object without the full API
            text = ""
        if not text.strip() and callable(getattr(diagram, "describe", None)):
            text = str(diagram.describe() or "")
    if not text.strip():
        text = getattr(spec, "diagram_text", "") or ""
    text = " ".join(text.split())
    if len(text) > SCENE_MAX_CHARS:
        text = text[:SCENE_MAX_CHARS].rsplit(" ", 1)[0] + " ..."
    return text


def role_wants(diagram: Any, me: str) -> list[str]:
    """What the role ``me`` brings to the scene: its attribute comments ("concern: frequent
    arguments about money and chores"), the concrete things its side of the talk is about."""
    entity = getattr(diagram, "entity", None)
    try:
        attributes = entity(me).attributes if callable(entity) else ()
    except (KeyError, TypeError, AttributeError):
        return []
    return [f"{a.name.replace('_', ' ')}: {a.comment.strip()}" for a in attributes if a.comment and a.comment.strip()]


def opening_topic(spec: Any) -> str:
    """A concrete thing the user opens with: its own first attribute comment, else the first note
    that names a fact (a leading ``Key:`` dropped), else ""."""
    diagram = getattr(spec, "diagram", None)
    if diagram is None:
        return ""
    wants = role_wants(diagram, spec.user_role)
    if wants:
        return wants[0].split(":", 1)[1].strip()
    from fountain.generation.facts import scene_facts

    for fact in scene_facts(diagram):
        text = fact.text.split(":", 1)[1].strip() if ":" in fact.text[:30] else fact.text
        if text:
            return text
    return ""


# A turn-by-turn retry of the local model is a new draw from a wider distribution: the 135M model
# asked again with the same settings tends to write the same echo (a new seed is not enough).
RETRY_TEMPERATURE_STEP = 0.1
RETRY_TEMPERATURE_MAX = 1.0
RETRY_REPEAT_PENALTY = (1.1, 1.2, 1.3, 1.35, 1.4)  # by attempt


def retry_sampling(sampling: Sampling, attempt: int) -> Sampling:
    """``sampling`` for the ``attempt``-th ask of one utterance (0: unchanged): temperature and
    llama.cpp's repeat penalty rise with each retry."""
    if attempt <= 0:
        return sampling
    base = sampling.temperature if sampling.temperature is not None else 0.7
    temperature = round(max(base, min(base + RETRY_TEMPERATURE_STEP * attempt, RETRY_TEMPERATURE_MAX)), 3)
    penalty = RETRY_REPEAT_PENALTY[min(attempt, len(RETRY_REPEAT_PENALTY) - 1)]
    return replace(sampling, temperature=temperature, repeat_penalty=penalty)


# What a turn-by-turn retry tells the model about its rejected line (by reason code).
RETRY_HINTS = {
    "gate:role_reversal": "Your last line spoke as the {other}. You are the {me}: say I and my, do not talk "
    "about the {me} as someone else, do not greet, welcome, introduce yourself as the {other} or offer help.",
    "gate:echo": "Your last line repeated what was already said. Do not repeat the {other}'s words or your own: "
    "say something new, in different words.",
    "elimination:repetition": "Your last line repeated what was already said. Say something new.",
    "gate:repetition": "Your last line repeated itself. Say it once, in plain words.",
    "gate:cut_off": "Your last line stopped mid-sentence. Write complete sentences.",
    "gate:placeholder": "Your last line was not a real utterance (a name, a bracket, code, or talk about the "
    "scene or the story). Speak in full sentences, as yourself.",
    "elimination:placeholder": "Your last line was a single word. Speak in full sentences.",
    "elimination:narration": "Your last line narrated the scene. Speak only your own words.",
}


@dataclass(frozen=True)
class Roleplay:
    """The fixed parts of one spec's role-play prompts: a scene card per role (who I am, what I
    want, the facts I know) and a concrete opening for the user."""

    user: str
    assistant: str
    user_scene: str  # the scene as the user side reads it ("... provides counseling to you")
    assistant_scene: str
    category: str
    instruct: bool = False
    topic: str = ""  # what the user opens with (a concern, a note's fact)
    user_role: str = ""  # the spec's role names, for stop sequences
    assistant_role: str = ""

    @classmethod
    def from_spec(cls, spec: Spec) -> Roleplay:
        return cls(
            role_name(spec.user_role),
            role_name(spec.assistant_role),
            scene_text(spec, spec.user_role, others_attributes=False),
            scene_text(spec, spec.assistant_role),
            spec.category,
            spec.generation.type == "instruct",
            opening_topic(spec),
            spec.user_role,
            spec.assistant_role,
        )

    def stop(self, role: str) -> tuple[str, ...]:
        """Stop sequences for ``role``'s utterance: where the model starts the other side's line."""
        other = (self.assistant_role, self.assistant) if role == "user" else (self.user_role, self.user)
        names = {n for n in other if n} | {n.title() for n in other if n}
        stops = [f"{n}:" for n in sorted(names)] + ["\nUser:", "\nAssistant:"]
        if role == "user" and not self.instruct:
            stops.append("\n\n")
        return tuple(stops)

    def retry_hint(self, role: str, reason: str) -> str:
        """One sentence telling the model what was wrong with its last line ("" when none fits)."""
        me, other = (self.user, self.assistant) if role == "user" else (self.assistant, self.user)
        return RETRY_HINTS.get(reason, "").format(me=me, other=other)

    # --- the user side -------------------------------------------------------------------------

    def user_system(self, instructions: str, persona: str | None, example: Sequence[Turn] = ()) -> str:
        lines = [
            f"You are the {self.user}, talking to the {self.assistant} ({self.category}). "
            f"Speak as yourself, in the first person. You are not the {self.assistant}: "
            "you came for help, you do not give it.",
            f"Background: {self.user_scene}" if self.user_scene else "",
        ]
        if persona:
            lines.append(f"You are this person: {persona.strip()}")
        if instructions:
            lines.append(instructions.strip())
        if example:
            lines.append(f'Someone else once said: "{example[0].user.strip()}" Say something different.')
        lines.append(
            (
                "Describe your situation in one detailed paragraph."
                if self.instruct
                else 'Say one short thing, 1-3 sentences, starting with "I" or "My".'
            )
            + " Only your own words: no narration, no stage directions, no names before lines."
        )
        return "\n".join(line for line in lines if line)

    def opening(self) -> str:
        # An instruction rather than a greeting: answering a greeting, the small model tends to
        # greet back as if it were the other side.
        if self.topic:
            what = self.topic.rstrip(".")
            if self.instruct:
                return f"Tell the {self.assistant} about your situation ({what}) and what you need help with."
            return f"Tell the {self.assistant}, in your own words, about this: {what}."
        if self.instruct:
            return f"Tell the {self.assistant} about your situation and what you need help with."
        return f"Tell the {self.assistant} what brings you here today."

    def user_messages(
        self, instructions: str, persona: str | None, history: Sequence[Turn], example: Sequence[Turn] = ()
    ) -> tuple[Message, ...]:
        """Messages asking for the user's next utterance after ``history``."""
        messages = [
            Message("system", self.user_system(instructions, persona, example)),
            Message("user", self.opening()),
        ]
        for turn in history[-HISTORY_TURNS:]:
            messages += [Message("assistant", turn.user), Message("user", turn.assistant)]
        return tuple(messages)

    # --- the assistant side --------------------------------------------------------------------

    def assistant_system(self, instructions: str) -> str:
        lines = [
            f"You are the {self.assistant}, talking to the {self.user} ({self.category}). "
            f"Speak directly to the {self.user}, in the first person.",
            f"Background: {self.assistant_scene}" if self.assistant_scene else "",
        ]
        if instructions:
            lines.append(instructions.strip())
        lines.append(
            "Answer helpfully, with specific, practical detail"
            + (", step by step." if self.instruct else ", in a few sentences.")
            + " Only your own words: no narration, no stage directions."
        )
        return "\n".join(line for line in lines if line)

    def assistant_messages(self, instructions: str, history: Sequence[Turn], user_text: str) -> tuple[Message, ...]:
        """Messages asking for the assistant's answer to ``user_text`` after ``history``."""
        messages = [Message("system", self.assistant_system(instructions))]
        for turn in history[-HISTORY_TURNS:]:
            messages += [Message("user", turn.user), Message("assistant", turn.assistant)]
        messages.append(Message("user", user_text))
        return tuple(messages)

    def max_tokens(self, role: str) -> int:
        if self.instruct:
            return INSTRUCT_USER_MAX_TOKENS if role == "user" else INSTRUCT_ASSISTANT_MAX_TOKENS
        return USER_MAX_TOKENS if role == "user" else ASSISTANT_MAX_TOKENS
