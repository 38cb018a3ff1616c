"""Validation of model output: JSON extraction -> conversation schema -> turn rules -> elimination.

Pure functions, no I/O: the engine calls :func:`validate_completion` on every answer and either
keeps the turns (:class:`Accepted`) or retries / writes a reject with a short reason code
(:class:`Rejected`). Reason codes:

- ``invalid_json``: no JSON value could be read from the text;
- ``truncated``: the JSON starts but never ends (the answer hit its token limit);
- ``schema``: JSON, but not the conversation shape (wrong or extra keys, empty strings, ...);
- ``turn_count``: the right shape with too few or too many turns;
- ``elimination:<rule>``: the Evol-Instruct elimination rules and fountain's turn rules, where
  ``<rule>`` is ``repetition``, ``no_information_gain``, ``refusal``, ``stopwords_only``,
  ``placeholder`` or ``leaked_template``.

Nothing here raises on model output: every input ends as Accepted or Rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from fountain.generation.extract import ExtractionError, extract_json
from fountain.generation.rules import LEAK_WORDS, Accepted, Rejected, Rules, _rules
from fountain.generation.shape import (
    check_shape,
    normalize_shape,
    request_schema,
    validation_schema,
)
from fountain.generation.stopwords import STOP_WORDS
from fountain.types import Turn

# --- turn and elimination rules ----------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
_WORD_ASCII = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")  # _WORD on lower-cased ASCII text

# Evol-Instruct eliminates answers that contain "sorry" and are under 80 words. Taken literally that
# drops every empathetic reply ("I'm sorry to hear that...") which counselling-style data is full
# of, so fountain requires an apology or AI disclaimer *together with* a refusal.
_REFUSAL = re.compile(
    r"\b(?:sorry|apologi[sz]e)\b[^.!?\n]{0,60}?\b(?:can(?:no|'|’)t|can not|unable|not able|won(?:'|’)t|"
    r"will not|not (?:allowed|permitted)|refuse)\b"
    r"|\bas an ai(?: language model)?\b"
    r"|\bi(?:'m| am) (?:just )?an ai\b"
    r"|\bi (?:can(?:no|'|’)t|cannot|am unable to|won(?:'|’)t) (?:help(?! but)|assist|provide|comply|answer|do that)",
    re.I,
)
REFUSAL_MAX_WORDS = 80
# Every text _REFUSAL matches contains one of these once folded by _FOLD and lower-cased (the four
# non-ASCII letters re.IGNORECASE equates with an ASCII one are mapped to it, before lower() would
# turn U+0130 into two characters): looking for them skips the regex for almost every message.
_REFUSAL_HINTS = ("sorry", "apologi", "an ai", "i can", "i am unable", "i won")
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _may_refuse(text: str, low: str) -> bool:
    """False when ``text`` (``low`` is ``text.lower()``) certainly does not match _REFUSAL."""
    folded = low if text.isascii() else text.translate(_FOLD).lower()
    for hint in _REFUSAL_HINTS:  # noqa: SIM110 - a loop costs about half of any() over a generator
        if hint in folded:
            return True
    return False


# Lower-cased ASCII text split at every character _WORD_ASCII cannot hold (all but a-z, 0-9 and
# the apostrophe): no match spans such a character, so the matches are those of each piece.
_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "'")})


def words(text: str) -> list[str]:
    low = text.lower()
    if not low.isascii():
        return _WORD.findall(low)
    pieces = low.translate(_SEPARATORS).split()
    if "'" not in low:
        return pieces  # a piece of a-z and 0-9 only is one _WORD_ASCII match
    return [w for piece in pieces for w in (_WORD_ASCII.findall(piece) if "'" in piece else (piece,))]


def _norm(text: str) -> str:
    """Case, punctuation and whitespace folded: two texts that differ only there are 'the same'."""
    return " ".join(words(text))


@lru_cache(maxsize=32)
def _leak_anchors(leak_words: tuple[str, ...]) -> tuple[str, ...]:
    """Substrings every text containing a leak word contains: a word's first punctuation mark
    ("#", "{", "%": one fast scan covers every word that has it) or else the word itself."""
    anchors = set()
    for word in leak_words:
        marks = [c for c in word if not c.isalnum() and not c.isspace()]
        anchors.add(marks[0] if marks else word)
    return tuple(sorted(anchors))


def _leak(text: str, rules: Rules, low: str | None = None) -> str | None:
    if low is None:
        low = text.lower()
    if any(anchor in low for anchor in _leak_anchors(rules.leak_words)):
        for word in rules.leak_words:
            if word in low:
                return word
    if rules.delimiter and len(rules.delimiter) >= 3 and rules.delimiter in text:
        return rules.delimiter
    return None


def check_message(text: str, role: str, rules: Rules) -> Rejected | None:
    """Rules that apply to one message alone (also used per utterance in turn-by-turn mode)."""
    return _check_message(text, role, rules, None)


def _check_message(
    text: str, role: str, rules: Rules, tokens: list[str] | None, *, may_leak: bool = True, may_refuse: bool = True
) -> Rejected | None:
    """:func:`check_message` with the message's :func:`words` when the caller has them already.

    ``may_leak`` / ``may_refuse`` False: the caller has seen that no template leak / no refusal
    hint occurs anywhere in the answer, so those (exact) checks are skipped."""
    if not text or not text.strip():
        return Rejected("schema", f"an empty {role} message")
    low = text.lower()
    if may_leak:
        leaked = _leak(text, rules, low)
        if leaked is not None:
            return Rejected("elimination:leaked_template", f"the {role} message contains {leaked!r}")
    if tokens is None:
        tokens = words(text)
    if len(tokens) == 1 and tokens[0] not in STOP_WORDS:
        # Not an Evol-Instruct rule: small models fill JSON slots with a name or a placeholder
        # ("John", "text1") instead of an utterance.
        return Rejected(
            "elimination:placeholder", f"the {role} message is a single word, not an utterance: {text.strip()[:60]!r}"
        )
    if STOP_WORDS.issuperset(tokens):
        return Rejected(
            "elimination:stopwords_only",
            f"the {role} message is only punctuation and stop words: {text.strip()[:60]!r}",
        )
    if (
        may_refuse
        and role == "assistant"
        and len(tokens) < REFUSAL_MAX_WORDS
        and _may_refuse(text, low)
        and _REFUSAL.search(text)
    ):
        return Rejected(
            "elimination:refusal", f"the assistant refuses in under {REFUSAL_MAX_WORDS} words: {text.strip()[:80]!r}"
        )
    return None


def check_turns(
    turns: Sequence[Turn], rules: Rules, *, kind: str = "seed", prefix: Sequence[Turn] = (), parent: Sequence[Turn] = ()
) -> Rejected | None:
    """Turn and elimination rules over a whole answer.

    ``kind`` is ``seed`` or ``derivation``; for a derivation, ``turns`` is the continuation,
    ``prefix`` what it continues and ``parent`` the whole conversation the prefix came from.
    """
    lo, hi = rules.bounds
    if not lo <= len(turns) <= hi:
        return Rejected("turn_count", f"{len(turns)} turns; the spec asks for {lo} to {hi}")
    # Each distinct message is tokenised once; two messages are "the same" when their word lists
    # are equal (what comparing _norm texts means, without joining the words).
    tokens: dict[str, list[str]] = {}

    def tokenise(text: str) -> list[str]:
        found = tokens.get(text)
        if found is None:
            found = tokens[text] = words(text)
        return found

    # One look at the whole answer decides, for almost every answer, that no message leaks the
    # template or hints at a refusal; a message is then checked for those only when it may.
    texts = [m for t in turns for m in (t.user, t.assistant) if isinstance(m, str)]
    whole = "\n".join(texts)
    whole_low = whole.lower()
    may_leak = _leak(whole, rules, whole_low) is not None
    may_refuse = _may_refuse(whole, whole_low)
    for i, turn in enumerate(turns, 1):
        for role, text in (("user", turn.user), ("assistant", turn.assistant)):
            problem = _check_message(
                text,
                role,
                rules,
                tokenise(text) if isinstance(text, str) else None,
                may_leak=may_leak,
                may_refuse=may_refuse,
            )
            if problem is not None:
                return Rejected(problem.reason, f"turn {i}: {problem.detail}")
    # Repetition: a message equal to the one right before it (an echo, or a turn that repeats
    # the previous one), counted across the prefix/continuation boundary.
    messages = [m for t in (*prefix, *turns) for m in (t.user, t.assistant)]
    start = 2 * len(prefix)
    for i in range(max(start, 1), len(messages)):
        if tokenise(messages[i]) == tokenise(messages[i - 1]):
            return Rejected(
                "elimination:repetition", f"message {i + 1} repeats the message before it: {messages[i].strip()[:60]!r}"
            )
    for i in range(1, len(turns)):
        turn, before = turns[i], turns[i - 1]
        if tokenise(turn.user) == tokenise(before.user) and tokenise(turn.assistant) == tokenise(before.assistant):
            return Rejected("elimination:repetition", f"turn {i + 1} repeats turn {i}")
    # No information gain: every turn of the continuation already occurs in the parent
    # conversation or the prefix (it repeats or copies what it was asked to continue).
    if kind == "derivation":

        def norm(text: str) -> tuple[str, ...]:
            return tuple(tokenise(text))

        known = {(norm(t.user), norm(t.assistant)) for t in (*prefix, *parent)}
        known_messages = {norm(m) for t in (*prefix, *parent) for m in (t.user, t.assistant)}
        if all(
            (norm(t.user), norm(t.assistant)) in known
            or (norm(t.user) in known_messages and norm(t.assistant) in known_messages)
            for t in turns
        ):
            return Rejected(
                "elimination:no_information_gain",
                "every turn of the continuation repeats the conversation it continues",
            )
    return _gates(turns, rules, prefix, tokens)


def _gates(
    turns: Sequence[Turn], rules: Rules, prefix: Sequence[Turn], tokens: dict[str, list[str]]
) -> Rejected | None:
    """The quality gates (:mod:`fountain.generation.gates`) of a spec's rules (``tokens``: the
    words of the messages tokenised so far, reused by the gates)."""
    if rules.scene is None:
        return None
    from fountain.generation.gates import run_gates

    failed = run_gates(turns, rules.scene, prefix=prefix, known_words=tokens)
    return Rejected(*failed) if failed is not None else None


def validate_completion(
    text_or_data: Any,
    *,
    spec_or_rules: Any,
    kind: str = "seed",
    prefix: Sequence[Turn] = (),
    parent: Sequence[Turn] = (),
    finish_reason: str | None = None,
) -> Accepted | Rejected:
    """Validate one answer (raw text, or already parsed JSON) -> :class:`Accepted` | :class:`Rejected`.

    ``spec_or_rules`` is a Spec or :class:`Rules`. Never raises on model output.
    """
    rules = _rules(spec_or_rules)
    try:
        if isinstance(text_or_data, str):
            try:
                data = extract_json(text_or_data)
            except ExtractionError as error:
                reason = error.reason
                if reason == "invalid_json" and finish_reason == "length":
                    reason = "truncated"
                return Rejected(reason, error.detail)
        else:
            data = text_or_data
        shaped = check_shape(data, rules)
        if isinstance(shaped, Rejected):
            return shaped
        problem = check_turns(shaped, rules, kind=kind, prefix=prefix, parent=parent)
        return problem or Accepted(shaped)
    except RecursionError:
        return Rejected("invalid_json", "the JSON nests too deeply")


__all__ = [
    "Accepted",
    "Rejected",
    "Rules",
    "ExtractionError",
    "extract_json",
    "normalize_shape",
    "check_shape",
    "check_message",
    "check_turns",
    "validate_completion",
    "request_schema",
    "validation_schema",
    "STOP_WORDS",
    "LEAK_WORDS",
]
