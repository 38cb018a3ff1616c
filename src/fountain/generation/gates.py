"""Quality gates: reject what a reader would, each with a reason code and the offending text.

A gate is a small rule object with a ``name`` and ``check(conversation) -> (True, "") | (False,
detail)`` (the filter pattern of datatrove). :func:`run_gates` runs them in order and the first
failure becomes the reject ``gate:<name>``. Message-level gates (:data:`MESSAGE_GATES`) also run on
each turn-by-turn utterance, so a bad line is asked again before the conversation goes on.

Gates (thresholds in the spec's ``quality:`` block, :class:`Quality`):

- ``role_reversal``: a message carries a role label ("COUNSELOR: ..."), or a user message speaks as
  the assistant's role (introduces itself as it, welcomes the other side, offers its service);
- ``echo``: a message contains at least ``echo`` (0.5) of an earlier message's word 4-grams (across
  the prefix boundary too), or a continuation's first turn equals the prefix's last;
- ``repetition``: a message repeats its own 4-grams (at least ``repetition`` of them are repeats),
  or one role says the same sentence in two messages;
- ``placeholder``: bracketed placeholders ("[Your Name]"), names-only or stand-in messages
  ("Sarah Johnson", "the user"), JSON fragments inside a message, fewer than ``min_words`` words;
- ``cut_off``: a message that ends mid-sentence (no closing punctuation, or at "Dr.");
- ``ungrounded``: the conversation mentions none of the scene's facts (:mod:`.facts`), when the
  diagram has any.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from fountain.generation.facts import Fact, mentioned_facts, scene_facts
from fountain.generation.validate import words
from fountain.types import Turn

# --- settings ----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Conversation:
    """One conversation under test: ``turns`` the new part, ``prefix`` what it continues."""

    turns: tuple[Turn, ...]
    prefix: tuple[Turn, ...] = ()

    def messages(self) -> list[tuple[str, str]]:
        """(role, text) of prefix and turns, in order."""
        return [
            (r, t)
            for turn in (*self.prefix, *self.turns)
            for r, t in (("user", turn.user), ("assistant", turn.assistant))
        ]


Verdict = tuple[bool, str]
KEEP: Verdict = (True, "")


class Gate(Protocol):
    name: str

    def check(self, conversation: Conversation, scene: Scene) -> Verdict: ...


def _show(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _label_words(role: str) -> str:
    return role.replace("_", " ").strip()


# --- message-level gates -----------------------------------------------------------------------

_SERVICE = re.compile(
    r"\b(?:how (?:can|may|could) i (?:help|assist|support) you"
    r"|what brings you (?:here|in|to)"
    r"|welcome to (?:my|our|the) (?:clinic|office|practice|session|class|shop|store|service)"
    r"|what can i do for you"
    r"|i(?:'m| am) here to (?:help|support|listen to) you"
    r"|thank you for (?:coming|reaching out|contacting)"
    r"|how are you feeling today"
    # the helper's voice, seen in the 135M model's user lines (issue 14's local runs)
    r"|i(?:'ll| will|'d| would|'m| am)? (?:be )?(?:happy|glad) to help(?: you|(?=\s*[.!]))"
    r"|glad (?:that )?you found (?:the|this|my|that) (?:information|advice|answer|explanation)s? helpful"
    r"|(?:with|on) your next case)\b",
    re.I,
)


@lru_cache(maxsize=64)
def _role_patterns(
    user_role: str, assistant_role: str, relations: tuple[str, ...]
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None]:
    """The role-reversal patterns of a scene, compiled once: a role label, the user introducing
    itself as the assistant's role, "your <relation>" (user side), "my <relation>" (assistant side)."""
    names = {"user", "assistant", _label_words(user_role).lower(), _label_words(assistant_role).lower()}
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    label = re.compile(rf"(?:^|\n)\s*[*_\"'>#]*\s*(?:the\s+)?(?:{alternatives})\s*[*_]*\s*:", re.I)
    other = _label_words(assistant_role).lower()
    me = re.compile(
        rf"\b(?:i(?:'m| am)|i work as|my work as|as your) (?:a |an |the |your )?(?:\w+ ){{0,2}}{re.escape(other)}\b",
        re.I,
    )
    if not relations:
        return label, me, None, None
    joined = "|".join(re.escape(n) for n in relations)
    return label, me, re.compile(rf"\byour (?:{joined})\b", re.I), re.compile(rf"\bmy (?:{joined})\b", re.I)


class RoleReversal:
    """Role labels inside a message; a user message that speaks as the assistant's role."""

    name = "role_reversal"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        label, me, yours, mine = _role_patterns(scene.user_role, scene.assistant_role, tuple(scene.user_relations))
        match = label.search(text)
        if match:
            return False, f"the {role} message carries a role label: {_show(text[match.start() :])}"
        if role == "user":
            other = _label_words(scene.assistant_role).lower()
            if other not in ("assistant",) and me.search(text):
                return False, f"the user introduces itself as the {other}: {_show(text)}"
            service = _SERVICE.search(text)
            if service:
                return False, f"the user speaks as the {other} ({service.group(0)!r}): {_show(text)}"
            found = yours.search(text) if yours is not None else None
            if found:
                return False, f"the user speaks as the {other} ({found.group(0)!r}): {_show(text)}"
        elif mine is not None:
            # The assistant's side has no partner in the scene: "my husband" is the user speaking.
            found = mine.search(text)
            if found:
                user = _label_words(scene.user_role).lower()
                return False, f"the assistant speaks as the {user} ({found.group(0)!r}): {_show(text)}"
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        return _each_new_message(self, conversation, scene)


_BRACKET = re.compile(
    r"\[(?:your|my|his|her|their|the|insert|name|client|user|partner)[^\]\n]{0,40}\]|<(?:name|your [^>\n]{1,30})>", re.I
)
_JSON = re.compile(r"\{\s*\"|\"\s*:\s*[\"\[{]|\"\s*\}|\]\s*\}|\"(?:user|assistant|conversations?)\"\s*:", re.I)
_STAND_IN = re.compile(
    r"^\s*(?:the|a|an|my|your)?\s*(?:user|assistant|client|counselee|counselor|customer|patient|person)\s*[.!?]?\s*$",
    re.I,
)
_NAME = re.compile(r"^[A-Z][a-z]+\.?$")


# Meta-text: a line about the writing task instead of a line in the scene (read in the local model's
# data: "I'll describe a scene from my own story", "details for the scenario: 1. The baker ...").
_META = re.compile(
    r"\b(?:(?:describe|write|continue|create|imagine) (?:a|the|this) (?:scene|scenario)"
    r"|for the scenario|the scene description|scene of your own creation|role-?play(?:ing)?"
    r"|as an ai|ai language model"
    # the rewriting tool's voice ("Here's a rewritten version of the text with improved clarity")
    r"|(?:revised|rewritten|reworked|polished|edited) version of (?:the|this|that|your) (?:text|message|story|passage))\b",
    re.I,
)


class Placeholder:
    """Bracketed placeholders, names-only or stand-in messages, JSON fragments, meta-text about the
    writing task, too few words."""

    name = "placeholder"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        match = _BRACKET.search(text)
        if match:
            return False, f"the {role} message has a placeholder {match.group(0)!r}: {_show(text)}"
        match = _META.search(text)
        if match:
            return (
                False,
                f"the {role} message is meta-text ({match.group(0)!r}), not a line of the scene: {_show(text)}",
            )
        if "```" not in text:
            match = _JSON.search(text)
            if match:
                return False, f"the {role} message has a JSON fragment {match.group(0)!r}: {_show(text)}"
        stripped = text.strip()
        roles = {_label_words(scene.user_role).lower(), _label_words(scene.assistant_role).lower()}
        if _STAND_IN.match(stripped) or re.sub(r"^(the|a|an)\s+", "", stripped.lower().rstrip(".!?")) in roles:
            return False, f"the {role} message is a stand-in, not an utterance: {_show(text)}"
        tokens = stripped.replace(",", " ").split()
        if 1 <= len(tokens) <= 3 and all(_NAME.match(t) for t in tokens) and not stripped.endswith(("?", "!")):
            return False, f"the {role} message is only a name: {_show(text)}"
        if len(words(text)) < scene.quality.min_words:
            return False, f"the {role} message has fewer than {scene.quality.min_words} words: {_show(text)}"
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        return _each_new_message(self, conversation, scene)


_ENDS = re.compile(r"(?:[.!?…:;)\]}\"'”’*`~>]|[\U0001F300-\U0001FAFF\u2600-\u27BF])\s*$")
_ABBREVIATION = re.compile(r"\b(?:dr|mr|mrs|ms|prof|st|e\.g|i\.e|etc\.? and|vs)\.\s*$", re.I)


def is_cut_off(text: str) -> bool:
    """True when ``text`` ends mid-sentence (the ``cut_off`` gate's rule)."""
    stripped = text.rstrip()
    if not stripped or stripped.endswith("```"):
        return False
    return bool(_ABBREVIATION.search(stripped)) or not _ENDS.search(stripped)


class CutOff:
    """A message that ends mid-sentence: no closing punctuation, or at an abbreviation ("Dr.")."""

    name = "cut_off"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        if is_cut_off(text):
            return False, f"the {role} message is cut off: ...{_show(text.rstrip()[-60:])}"
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        return _each_new_message(self, conversation, scene)


def _grams(tokens: Sequence[str], n: int = 4) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


_CODE = re.compile(r"```.*?(?:```|$)|`[^`]*`", re.S)
_CODE_MARKS = re.compile(r"[=()\[\]{}#<>]")


def prose(text: str) -> str:
    """``text`` without code (fenced blocks and inline spans): code repeats itself by nature."""
    return _CODE.sub(" ", text) if "`" in text else text


@lru_cache(maxsize=4096)
def prose_grams(text: str) -> frozenset[tuple[str, ...]]:
    """The word 4-grams of a message's prose (code left out); memoised, since the echo gate
    compares each message with every earlier one."""
    return frozenset(_grams(words(prose(text))))


def echoes(
    grams: frozenset[tuple[str, ...]], before: frozenset[tuple[str, ...]], threshold: float, *, previous: bool = False
) -> bool:
    """True when a message (``grams``) is mostly an earlier one (``before``): it holds at least
    ``threshold`` of the earlier message's 4-grams and they make at least a third of its own, or
    are at least :data:`ECHO_COPIED_GRAMS` of them and ``before`` is the message just before
    (``previous``): a long stretch of the other side's last line copied into a long answer."""
    if len(before) < 3 or not grams:
        return False
    shared = len(before & grams)
    if previous and shared >= ECHO_COPIED_GRAMS:
        return True  # a long stretch of the line just before, however long the answer around it
    return shared / len(before) >= threshold and shared / len(grams) >= ECHO_OWN_SHARE


ECHO_OWN_SHARE = 1 / 3
ECHO_COPIED_GRAMS = 12  # about 15 words of an earlier message copied
SENTENCE_MIN_WORDS = 9


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


class Repetition:
    """Degenerate repetition: a message repeating its own 4-grams, or a role repeating a sentence."""

    name = "repetition"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        grams = _grams(words(prose(text)))
        if len(grams) >= 8:
            repeats = len(grams) - len(set(grams))
            if repeats / len(grams) >= scene.quality.repetition:
                return False, f"the {role} message repeats itself ({repeats} of {len(grams)} 4-grams): {_show(text)}"
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        verdict = _each_new_message(self, conversation, scene)
        if not verdict[0]:
            return verdict
        seen: dict[str, set[tuple[str, ...]]] = {"user": set(), "assistant": set()}
        start = 2 * len(conversation.prefix)
        for i, (role, text) in enumerate(conversation.messages()):
            sentences = {tuple(words(s)) for s in _SENTENCE.findall(prose(text)) if not _CODE_MARKS.search(s)}
            sentences = {s for s in sentences if len(s) >= SENTENCE_MIN_WORDS}
            if i >= start:
                again = sentences & seen[role]
                if again:
                    return False, f"the {role} says the same sentence twice: {_show(' '.join(next(iter(again))))}"
            seen[role] |= sentences
        return KEEP


class Echo:
    """A message that contains most of an earlier one (the previous turn plus a sentence)."""

    name = "echo"

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        prefix, turns = conversation.prefix, conversation.turns
        if prefix and turns:
            last, first = prefix[-1], turns[0]
            if words(last.user) == words(first.user) and words(last.assistant) == words(first.assistant):
                return False, "the continuation's first turn repeats the prefix's last turn"
        messages = conversation.messages()
        start = 2 * len(prefix)
        earlier: list[tuple[str, frozenset[tuple[str, ...]]]] = []
        for i, (role, text) in enumerate(messages):
            grams = prose_grams(text)
            if i >= start and grams:
                for k, (before_role, before) in enumerate(earlier):
                    if echoes(grams, before, scene.quality.echo, previous=k == len(earlier) - 1):
                        return False, f"the {role} message echoes an earlier {before_role} message: {_show(text)}"
            earlier.append((role, grams))
        return KEEP


class Grounding:
    """The conversation mentions at least ``min_facts`` of the scene's facts (when it has any)."""

    name = "ungrounded"

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        need = min(scene.quality.min_facts, len(scene.facts))
        if need <= 0:
            return KEEP
        found = mentioned_facts(scene.facts, (t for _, t in conversation.messages()))
        if len(found) >= need:
            return KEEP
        sample = "; ".join(f.text for f in scene.facts[:3])
        return False, f"the conversation mentions {len(found)} of the scene's facts (needs {need}): {sample[:160]}"


def _each_new_message(gate: Any, conversation: Conversation, scene: Scene) -> Verdict:
    start = 2 * len(conversation.prefix)
    for i, (role, text) in enumerate(conversation.messages()):
        if i < start:
            continue
        ok, detail = gate.check_message(role, text, scene)
        if not ok:
            return False, f"turn {(i - start) // 2 + 1}: {detail}"
    return KEEP


MESSAGE_GATES: tuple[Any, ...] = (RoleReversal(), Placeholder(), CutOff(), Repetition())
# Echo before the conversation-level repetition check: a turn repeating another is an echo.
GATES: tuple[Gate, ...] = (RoleReversal(), Placeholder(), CutOff(), Echo(), Repetition(), Grounding())
GATE_NAMES = tuple(g.name for g in GATES)
PREFIX = "gate:"


def run_gates(
    turns: Sequence[Turn], scene: Scene, *, prefix: Sequence[Turn] = (), conversation_level: bool = True
) -> tuple[str, str] | None:
    """The first failing gate as ``("gate:<name>", detail)``, or None when every gate keeps it."""
    if not scene.quality.enabled:
        return None
    conversation = Conversation(tuple(turns), tuple(prefix))
    for gate in GATES:
        if not scene.quality.wants(gate.name):
            continue
        if not conversation_level and gate.name == Grounding.name:
            continue
        ok, detail = gate.check(conversation, scene)
        if not ok:
            return PREFIX + gate.name, detail
    return None


def check_utterance_gates(
    role: str, text: str, scene: Scene, earlier: Sequence[tuple[str, str]] = ()
) -> tuple[str, str] | None:
    """Message-level gates on one turn-by-turn utterance, plus echo against ``earlier`` messages
    (``(role, text)`` pairs of the conversation so far)."""
    if not scene.quality.enabled:
        return None
    for gate in MESSAGE_GATES:
        if scene.quality.wants(gate.name):
            ok, detail = gate.check_message(role, text, scene)
            if not ok:
                return PREFIX + gate.name, detail
    if scene.quality.wants(Echo.name):
        grams = prose_grams(text)
        for k, (before_role, before_text) in enumerate(earlier):
            if echoes(grams, prose_grams(before_text), scene.quality.echo, previous=k == len(earlier) - 1):
                return PREFIX + Echo.name, f"the {role} echoes an earlier {before_role} message: {_show(text)}"
    return None
