"""One message as the quality gates see it: its text and what they derive from it, each computed
once per conversation.

Every gate of :mod:`fountain.generation.gates` reads the same messages: the words (placeholder,
repetition), the word 4-grams of the prose (echo, repetition), the sentences (repetition), the
stems (grounding). :class:`MessageText` derives each on first use and keeps it, so a conversation
run through all the gates tokenises each message once instead of once per gate. The derived forms
are exactly what the gates computed from the text before (same functions, same order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from fountain.generation.facts import stem
from fountain.generation.validate import words
from fountain.types import Turn

Gram = tuple[str, ...]

_CODE = re.compile(r"```.*?(?:```|$)|`[^`]*`", re.S)
_CODE_MARKS = re.compile(r"[=()\[\]{}#<>]")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_STEM_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # fountain.generation.facts' word
SENTENCE_MIN_WORDS = 9


# Meta-text (gate:placeholder): a line about the writing task instead of a line in the scene (read in the local model's
# data: "I'll describe a scene from my own story", "details for the scenario: 1. The baker ...").
META = re.compile(
    r"\b(?:(?:describe|write|continue|create|imagine) (?:a|the|this) (?:scene|scenario)"
    r"|for the scenario|the scene description|scene of your own creation|role-?play(?:ing)?"
    r"|as an ai|ai language model"
    # the role-play prompt's own words copied into a line ("You are this person: a reflective writer")
    r"|you are this person|say one short thing|only your own words|speak as yourself, in the first person"
    # the rewriting tool's voice ("Here's a rewritten version of the text with improved clarity")
    r"|(?:revised|rewritten|reworked|polished|edited) version of (?:the|this|that|your) (?:text|message|story|passage)"
    # the editor's voice (q2's marriage_counsel run: "Here's an example of how we could adjust the
    # paragraph", "In this scene, I also expanded on ...", "creative editing")
    r"|(?:adjust|revise|rewrite|edit|expand) (?:the|this|that|my|your) (?:paragraph|passage|text)"
    r"|in this scene|the previous (?:scene|paragraph)|creative editing"
    # language_tutoring at 48d1e1c: "In the first paragraph: 1. The tutor ...", "Here's an edited version with ..."
    r"|here(?:'s| is) an? (?:edited|revised|rewritten|reworked) version|the (?:first|next) paragraph"
    r"|this scene takes place|the scene (?:ends|starts|begins))\b",
    re.I,
)
# One in every META match (each alternative above holds one; tests/generation/test_gates.py checks
# an example of each): a message without any is not searched.
META_HINTS = (
    "scen",
    "role",
    "an ai",
    "language model",
    "this person",
    "one short thing",
    "your own words",
    "speak as yourself",
    "version",
    "paragraph",
    "passage",
    "text",
    "creative editing",
)


def prose(text: str) -> str:
    """``text`` without code (fenced blocks and inline spans): code repeats itself by nature."""
    return _CODE.sub(" ", text) if "`" in text else text


def grams_of(tokens: Sequence[str]) -> list[Gram]:
    """The word 4-grams of ``tokens``, in order (with repeats)."""
    return list(zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False))


class MessageText:
    """A message's text and, computed on first use, its lower-cased form, words, prose 4-grams,
    long sentences and stems."""

    __slots__ = ("text", "_low", "_words", "_prose_words", "_grams", "_gram_set", "_sentences", "_stems")

    def __init__(self, text: str, tokens: list[str] | None = None) -> None:
        self.text = text
        self._low: str | None = None
        self._words = tokens  # validate.words(text), when the caller has them already
        self._prose_words: list[str] | None = None
        self._grams: list[Gram] | None = None
        self._gram_set: frozenset[Gram] | None = None
        self._sentences: set[Gram] | None = None
        self._stems: set[str] | None = None

    @property
    def low(self) -> str:
        if self._low is None:
            self._low = self.text.lower()
        return self._low

    @property
    def words(self) -> list[str]:
        """:func:`fountain.generation.validate.words` of the text."""
        if self._words is None:
            self._words = words(self.text)
        return self._words

    @property
    def prose_words(self) -> list[str]:
        """The words of the text without its code."""
        if self._prose_words is None:
            self._prose_words = words(prose(self.text)) if "`" in self.text else self.words
        return self._prose_words

    @property
    def grams(self) -> list[Gram]:
        """The prose's word 4-grams, in order."""
        if self._grams is None:
            self._grams = grams_of(self.prose_words)
        return self._grams

    @property
    def gram_set(self) -> frozenset[Gram]:
        """The prose's distinct word 4-grams."""
        if self._gram_set is None:
            if self._grams is not None:
                self._gram_set = frozenset(self._grams)
            else:  # straight from the words: no list of the 4-grams on the way
                w = self.prose_words
                self._gram_set = frozenset(zip(w, w[1:], w[2:], w[3:], strict=False))
        return self._gram_set

    @property
    def gram_count(self) -> int:
        """How many 4-grams the prose has (``len(self.grams)``, repeats counted)."""
        return max(0, len(self.prose_words) - 3)

    @property
    def sentences(self) -> set[Gram]:
        """The words of each prose sentence of at least :data:`SENTENCE_MIN_WORDS` words (a
        sentence with code marks left out)."""
        if self._sentences is None:
            found: set[Gram] = set()
            # A sentence's words are the message's words within it (a sentence ends at . ! ? or a
            # line break, which no word contains): a message with fewer has no long sentence.
            if len(self.prose_words) >= SENTENCE_MIN_WORDS:
                for sentence in _SENTENCE.findall(prose(self.text)):
                    if _CODE_MARKS.search(sentence):
                        continue
                    tokens = words(sentence)
                    if len(tokens) >= SENTENCE_MIN_WORDS:
                        found.add(tuple(tokens))
            self._sentences = found
        return self._sentences

    @property
    def stems(self) -> set[str]:
        """:func:`fountain.generation.facts.stems` of the text."""
        if self._stems is None:
            if self.text.isascii():
                # On ASCII text _STEM_WORD's words are the words' pieces between apostrophes.
                distinct = set(self.words)
                if any("'" in w for w in distinct):
                    distinct = {piece for w in distinct for piece in w.split("'")}
                self._stems = set(map(stem, distinct))
            else:
                self._stems = set(map(stem, set(_STEM_WORD.findall(self.text))))
        return self._stems


def message_texts(texts: Sequence[str], known: dict[str, list[str]] | None = None) -> list[MessageText]:
    """One :class:`MessageText` per text (the same object for a text that comes back), seeded
    with the words already in ``known`` (text -> :func:`~fountain.generation.validate.words`)."""
    made: dict[str, MessageText] = {}
    out = []
    for text in texts:
        view = made.get(text)
        if view is None:
            view = made[text] = MessageText(text, known.get(text) if known else None)
        out.append(view)
    return out


def absent(view: MessageText, needles: tuple[str, ...] | str) -> bool:
    """True when no IGNORECASE match of a pattern that contains one of ``needles`` (lower-case
    ASCII) can be in the message: the text is ASCII and holds none of them. (On other text
    IGNORECASE folds letters that ``str.lower`` does not: the pattern must run.)"""
    if not view.text.isascii():
        return False
    low = view.low
    if isinstance(needles, str):
        return needles not in low
    for needle in needles:  # noqa: SIM110 - a loop costs about half of any() over a generator
        if needle in low:
            return False
    return True


_END_CHARS = frozenset(".!?…:;)]}\"'”’*`~>")


def ends_a_sentence(stripped: str) -> bool:
    """What the cut-off gate's ``(?:[.!?…:;)\\]}"'”’*`~>]|[\\U0001F300-\\U0001FAFF\\u2600-\\u27BF])\\s*$``
    finds in a non-empty text with no trailing whitespace: its last character closes a sentence."""
    last = stripped[-1]
    return last in _END_CHARS or "\U0001f300" <= last <= "\U0001faff" or "\u2600" <= last <= "\u27bf"


@dataclass(frozen=True)
class Conversation:
    """One conversation under test: ``turns`` the new part, ``prefix`` what it continues.

    ``known``: words already computed for some texts (text -> validate.words)."""

    turns: tuple[Turn, ...]
    prefix: tuple[Turn, ...] = ()
    known: dict[str, list[str]] | None = field(default=None, compare=False, repr=False)

    def messages(self) -> list[tuple[str, str]]:
        """(role, text) of prefix and turns, in order."""
        return [(role, view.text) for role, view in self.views]

    @cached_property
    def views(self) -> list[tuple[str, MessageText]]:
        """(role, :class:`MessageText`) of prefix and turns, in order; each text analysed once."""
        texts = [m for turn in (*self.prefix, *self.turns) for m in (turn.user, turn.assistant)]
        return [(_ROLES[i % 2], view) for i, view in enumerate(message_texts(texts, self.known))]


_ROLES = ("user", "assistant")


def may_repeat_a_sentence(views: Sequence[tuple[str, MessageText]], start: int) -> bool:
    """False when no message from ``start`` on can say a sentence an earlier message of its role
    said: a shared sentence of at least SENTENCE_MIN_WORDS words puts its own 4-grams (at least
    SENTENCE_MIN_WORDS - 3) in both messages' 4-grams."""
    need = SENTENCE_MIN_WORDS - 3
    for i in range(max(start, 2), len(views)):
        role, grams = views[i][0], views[i][1].gram_set
        if len(grams) >= need and any(
            len(grams & views[j][1].gram_set) >= need for j in range(i - 2, -1, -2) if views[j][0] == role
        ):
            return True
    return False
