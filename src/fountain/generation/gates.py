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
from functools import lru_cache
from typing import Any, Protocol

from fountain.generation.gate_text import (
    META,
    META_HINTS,
    Conversation,
    MessageText,
    absent,
    ends_a_sentence,
    grams_of,
    may_repeat_a_sentence,
)
from fountain.generation.gate_text import (
    prose as prose,  # re-exported: fountain.report.quality reads it here
)
from fountain.generation.role_patterns import (
    INTRODUCTION_HINTS,
    SERVICE,
    SERVICE_HINTS,
    own_role_pattern,
    relation_hints,
    role_patterns,
)
from fountain.generation.scene import Scene
from fountain.types import Turn

Verdict = tuple[bool, str]
KEEP: Verdict = (True, "")


class Gate(Protocol):
    name: str

    def check(self, conversation: Conversation, scene: Scene) -> Verdict: ...


def _show(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


# --- message-level gates -----------------------------------------------------------------------
#
# Each message-level gate has ``check_message(role, text, scene)`` and the same check on an
# analysed message, ``check_text(role, MessageText, scene)``. A pattern is only searched where it
# can match: each skip below is exact (a character or substring every match contains), and on
# non-ASCII text, where IGNORECASE folds letters that ``str.lower`` does not, the pattern always
# runs.


class RoleReversal:
    """Role labels inside a message; a user message that speaks as the assistant's role."""

    name = "role_reversal"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        return self.check_text(role, MessageText(text), scene)

    def check_text(self, role: str, view: MessageText, scene: Scene) -> Verdict:
        text = view.text
        label, me, yours, mine = role_patterns(scene.user_role, scene.assistant_role, tuple(scene.user_relations))
        match = label.search(text) if ":" in text else None
        if match:
            return False, f"the {role} message carries a role label: {_show(text[match.start() :])}"
        if role == "user":
            other = scene.labels[1]
            if (
                other not in ("assistant",)
                and not (other.isascii() and absent(view, other))
                and not absent(view, INTRODUCTION_HINTS)
                and me.search(text)
            ):
                return False, f"the user introduces itself as the {other}: {_show(text)}"
            service = None if absent(view, SERVICE_HINTS) else SERVICE.search(text)
            if service:
                return False, f"the user speaks as the {other} ({service.group(0)!r}): {_show(text)}"
            own, hints = own_role_pattern(scene.user_role)
            found = None if absent(view, hints) else own.search(text)
            if found:
                user = scene.labels[0]
                return False, f"the user talks about the {user} as someone else ({found.group(0)!r}): {_show(text)}"
            hints = relation_hints("your ", scene.user_relations)
            found = yours.search(text) if yours is not None and not absent(view, hints) else None
            if found:
                return False, f"the user speaks as the {other} ({found.group(0)!r}): {_show(text)}"
        elif mine is not None and not absent(view, relation_hints("my ", scene.user_relations)):
            # The assistant's side has no partner in the scene: "my husband" is the user speaking.
            found = mine.search(text)
            if found:
                user = scene.labels[0]
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


class Placeholder:
    """Bracketed placeholders, names-only or stand-in messages, JSON fragments, meta-text about the
    writing task, too few words."""

    name = "placeholder"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        return self.check_text(role, MessageText(text), scene)

    def check_text(self, role: str, view: MessageText, scene: Scene) -> Verdict:
        text = view.text
        # Every _BRACKET match holds "[" or "<"; every _JSON match holds '"' or "]".
        match = _BRACKET.search(text) if ("[" in text or "<" in text) else None
        if match:
            return False, f"the {role} message has a placeholder {match.group(0)!r}: {_show(text)}"
        match = None if absent(view, META_HINTS) else META.search(text)
        if match:
            return (
                False,
                f"the {role} message is meta-text ({match.group(0)!r}), not a line of the scene: {_show(text)}",
            )
        if "```" not in text and ('"' in text or "]" in text):
            match = _JSON.search(text)
            if match:
                return False, f"the {role} message has a JSON fragment {match.group(0)!r}: {_show(text)}"
        n_words = len(view.words)
        stripped = text.strip()
        if _stand_in(stripped, view, n_words, scene):
            return False, f"the {role} message is a stand-in, not an utterance: {_show(text)}"
        # A name-only message (1 to 3 capitalised ASCII words) has at most 3 words.
        if n_words <= 3:
            tokens = stripped.replace(",", " ").split()
            if 1 <= len(tokens) <= 3 and all(_NAME.match(t) for t in tokens) and not stripped.endswith(("?", "!")):
                return False, f"the {role} message is only a name: {_show(text)}"
        if n_words < scene.quality.min_words:
            return False, f"the {role} message has fewer than {scene.quality.min_words} words: {_show(text)}"
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        return _each_new_message(self, conversation, scene)


def _stand_in(stripped: str, view: MessageText, n_words: int, scene: Scene) -> bool:
    """A stand-in ("the user", "Counselor."): a _STAND_IN match has at most 2 words in ASCII text;
    a role name left after an article ends the lower-cased text (``view.low`` stripped)."""
    if (n_words <= 2 or not view.text.isascii()) and _STAND_IN.match(stripped):
        return True
    roles = scene.labels
    low = view.low.strip().rstrip(".!?")
    return low.endswith(roles) and re.sub(r"^(the|a|an)\s+", "", low) in roles


_ABBREVIATION = re.compile(r"\b(?:dr|mr|mrs|ms|prof|st|e\.g|i\.e|etc\.? and|vs)\.\s*$", re.I)
ABBREVIATION_TAIL = 16  # characters: longer than any _ABBREVIATION match and the one before it


def is_cut_off(text: str) -> bool:
    """True when ``text`` ends mid-sentence (the ``cut_off`` gate's rule)."""
    stripped = text.rstrip()
    if not stripped or stripped.endswith("```"):
        return False
    # _ABBREVIATION matches only at the end, after a ".".
    return (stripped[-1] == "." and bool(_ABBREVIATION.search(stripped[-ABBREVIATION_TAIL:]))) or not ends_a_sentence(
        stripped
    )


class CutOff:
    """A message that ends mid-sentence: no closing punctuation, or at an abbreviation ("Dr.")."""

    name = "cut_off"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        if is_cut_off(text):
            return False, f"the {role} message is cut off: ...{_show(text.rstrip()[-60:])}"
        return KEEP

    def check_text(self, role: str, view: MessageText, scene: Scene) -> Verdict:
        return self.check_message(role, view.text, scene)

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        return _each_new_message(self, conversation, scene)


def _grams(tokens: Sequence[str], n: int = 4) -> list[tuple[str, ...]]:
    return grams_of(tokens) if n == 4 else [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@lru_cache(maxsize=4096)
def prose_grams(text: str) -> frozenset[tuple[str, ...]]:
    """The word 4-grams of a message's prose (code left out); memoised, since the echo gate
    compares each message with every earlier one."""
    return MessageText(text).gram_set


def echoes(
    grams: frozenset[tuple[str, ...]], before: frozenset[tuple[str, ...]], threshold: float, *, previous: bool = False
) -> bool:
    """True when a message (``grams``) is mostly an earlier one (``before``): it holds at least
    ``threshold`` of the earlier message's 4-grams and they make at least a third of its own, or
    are at least :data:`ECHO_COPIED_GRAMS` of them and ``before`` is the message just before or
    the user's own last one (``previous``, :func:`_previous`): a long stretch of the other side's
    last line copied into a long answer, or a user restating its own last line ("I'll just make
    sure to add a bit more detail, and I'm going to share that with you in a way that's easy to
    read ...")."""
    if len(before) < 3 or not grams or before.isdisjoint(grams):
        return False
    shared = len(before & grams)
    if previous and shared >= ECHO_COPIED_GRAMS:
        return True  # a long stretch of the line just before, however long the answer around it
    return shared / len(before) >= threshold and shared / len(grams) >= ECHO_OWN_SHARE


def _previous(k: int, n: int, role: str) -> bool:
    """Whether the ``k``-th of ``n`` earlier messages is one a long copied stretch may not come
    from: the message just before, or for a user line its own last line (roles alternate). An
    assistant may restate its own explanation (the Janus GPT-4 coding answers do)."""
    return k == n - 1 or (role == "user" and k == n - 2)


ECHO_OWN_SHARE = 1 / 3
ECHO_COPIED_GRAMS = 12  # about 15 words of an earlier message copied


class Repetition:
    """Degenerate repetition: a message repeating its own 4-grams, or a role repeating a sentence."""

    name = "repetition"

    def check_message(self, role: str, text: str, scene: Scene) -> Verdict:
        return self.check_text(role, MessageText(text), scene)

    def check_text(self, role: str, view: MessageText, scene: Scene) -> Verdict:
        count = view.gram_count
        if count >= 8:
            repeats = count - len(view.gram_set)
            if repeats / count >= scene.quality.repetition:
                return (
                    False,
                    f"the {role} message repeats itself ({repeats} of {count} 4-grams): {_show(view.text)}",
                )
        return KEEP

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        verdict = _each_new_message(self, conversation, scene)
        if not verdict[0]:
            return verdict
        start = 2 * len(conversation.prefix)
        if not may_repeat_a_sentence(conversation.views, start):
            return KEEP
        seen: dict[str, set[tuple[str, ...]]] = {"user": set(), "assistant": set()}
        for i, (role, view) in enumerate(conversation.views):
            sentences = view.sentences
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
        views = conversation.views
        start = 2 * len(prefix)
        if prefix and turns:
            last_user, last_assistant, first_user, first_assistant = views[start - 2 : start + 2]
            if last_user[1].words == first_user[1].words and last_assistant[1].words == first_assistant[1].words:
                return False, "the continuation's first turn repeats the prefix's last turn"
        earlier: list[tuple[str, frozenset[tuple[str, ...]]]] = []
        for i, (role, view) in enumerate(views):
            grams = view.gram_set
            if i >= start and grams:
                for k, (before_role, before) in enumerate(earlier):
                    if echoes(grams, before, scene.quality.echo, previous=_previous(k, len(earlier), role)):
                        return False, f"the {role} message echoes an earlier {before_role} message: {_show(view.text)}"
            earlier.append((role, grams))
        return KEEP


class Grounding:
    """The conversation mentions at least ``min_facts`` of the scene's facts (when it has any)."""

    name = "ungrounded"

    def check(self, conversation: Conversation, scene: Scene) -> Verdict:
        need = min(scene.quality.min_facts, len(scene.facts))
        if need <= 0:
            return KEEP
        said: set[str] = set()  # the facts' keywords the conversation says
        found = 0
        keywords = scene.fact_keywords
        for _, view in conversation.views:
            new = view.stems & keywords
            if new and not new <= said:
                said |= new
                found = sum(1 for fact in scene.facts if fact.mentioned_in(said))
                if found >= need:
                    return KEEP  # the facts mentioned so far are enough
        sample = "; ".join(f.text for f in scene.facts[:3])
        return False, f"the conversation mentions {found} of the scene's facts (needs {need}): {sample[:160]}"


def _each_new_message(gate: Any, conversation: Conversation, scene: Scene) -> Verdict:
    start = 2 * len(conversation.prefix)
    views = conversation.views
    for i in range(start, len(views)):
        role, view = views[i]
        ok, detail = gate.check_text(role, view, scene)
        if not ok:
            return False, f"turn {(i - start) // 2 + 1}: {detail}"
    return KEEP


MESSAGE_GATES: tuple[Any, ...] = (RoleReversal(), Placeholder(), CutOff(), Repetition())
# Echo before the conversation-level repetition check: a turn repeating another is an echo.
GATES: tuple[Gate, ...] = (RoleReversal(), Placeholder(), CutOff(), Echo(), Repetition(), Grounding())
GATE_NAMES = tuple(g.name for g in GATES)
PREFIX = "gate:"


def run_gates(
    turns: Sequence[Turn],
    scene: Scene,
    *,
    prefix: Sequence[Turn] = (),
    conversation_level: bool = True,
    known_words: dict[str, list[str]] | None = None,
) -> tuple[str, str] | None:
    """The first failing gate as ``("gate:<name>", detail)``, or None when every gate keeps it.

    ``known_words``: :func:`~fountain.generation.validate.words` of texts already tokenised."""
    if not scene.quality.enabled:
        return None
    conversation = Conversation(tuple(turns), tuple(prefix), known_words)
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
    view = MessageText(text)
    for gate in MESSAGE_GATES:
        if scene.quality.wants(gate.name):
            ok, detail = gate.check_text(role, view, scene)
            if not ok:
                return PREFIX + gate.name, detail
    if scene.quality.wants(Echo.name):
        grams = view.gram_set
        for k, (before_role, before_text) in enumerate(earlier):
            if echoes(grams, prose_grams(before_text), scene.quality.echo, previous=_previous(k, len(earlier), role)):
                return PREFIX + Echo.name, f"the {role} echoes an earlier {before_role} message: {_show(text)}"
    return None
