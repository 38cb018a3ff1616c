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

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fountain.generation.extract import ExtractionError, extract_json
from fountain.resources import load_schema
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
    scene: Any = None  # fountain.generation.gates.Scene: the quality gates (None: no gates)

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
        from fountain.generation.gates import Scene

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


# --- schemas -----------------------------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any], *, keep_pattern: bool) -> Any:
    """``node`` with every local ``$ref`` replaced by its definition (providers differ in $ref support)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(defs[name], defs, keep_pattern=keep_pattern)
        return {
            k: _inline(v, defs, keep_pattern=keep_pattern)
            for k, v in node.items()
            if k not in ("$defs", "$id", "$schema", "title", "description") and (keep_pattern or k != "pattern")
        }
    if isinstance(node, list):
        return [_inline(v, defs, keep_pattern=keep_pattern) for v in node]
    return node


@lru_cache(maxsize=64)
def _schema(kind: str, lo: int, hi: int, keep_pattern: bool) -> dict[str, Any]:
    base = load_schema("conversation.schema.json")
    defs = base["$defs"]
    if kind == INSTRUCT:
        instruct: dict[str, Any] = _inline(defs["instruct"], defs, keep_pattern=keep_pattern)
        return instruct
    schema: dict[str, Any] = _inline(copy.deepcopy(base), defs, keep_pattern=keep_pattern)
    schema["properties"]["conversations"]["minItems"] = lo
    schema["properties"]["conversations"]["maxItems"] = hi
    return schema


def request_schema(rules: Rules) -> dict[str, Any]:
    """The JSON schema sent with a request (self-contained, no ``$ref``, no regex ``pattern``).

    A fresh copy each call, so a provider adapter may adapt it freely.
    """
    lo, hi = rules.bounds
    return copy.deepcopy(_schema(rules.type, lo, hi, False))


@lru_cache(maxsize=64)
def _validator(kind: str, lo: int, hi: int) -> Any:  # a jsonschema Draft202012Validator (no type hints)
    from jsonschema import Draft202012Validator

    # Checked against the meta-schema by the test suite (tests/generation/test_validate.py).
    return Draft202012Validator(_schema(kind, lo, hi, True))


def validation_schema(rules: Rules) -> dict[str, Any]:
    """The schema answers are checked against (the request schema plus non-blank strings)."""
    lo, hi = rules.bounds
    return copy.deepcopy(_schema(rules.type, lo, hi, True))


# --- shape -------------------------------------------------------------------------------------


def _is_turn_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, dict) and set(t) == {"user", "assistant"} for t in value)
    )


def _from_messages(value: Any) -> list[dict[str, Any]] | None:
    """Chat messages (role/content) alternating user, assistant, ... as turn dicts, else None."""
    if not (isinstance(value, list) and value and len(value) % 2 == 0):
        return None
    turns: list[dict[str, Any]] = []
    for i in range(0, len(value), 2):
        u, a = value[i], value[i + 1]
        if not (
            isinstance(u, dict)
            and isinstance(a, dict)
            and set(u) == set(a) == {"role", "content"}
            and u["role"] == "user"
            and a["role"] == "assistant"
        ):
            return None
        turns.append({"user": u["content"], "assistant": a["content"]})
    return turns


def normalize_shape(data: Any, kind: str) -> Any:  # noqa: C901 - complexity debt, listed in docs/architecture.md
    """Map the unambiguous near-misses onto the schema's shape; anything else is left as it is.

    Accepted near-misses: a bare list of turns; a bare ``{"user", "assistant"}`` object; the
    singular/plural key swapped (``conversation`` holding a list, ``conversations`` holding one
    pair); OpenAI-style ``messages`` alternating user/assistant. Wrong keys are never renamed.
    """
    if isinstance(data, dict) and set(data) == {"messages"}:
        turns = _from_messages(data["messages"])
        if turns is not None:
            data = turns
    elif isinstance(data, list):
        turns = _from_messages(data)
        if turns is not None:
            data = turns
    if kind == INSTRUCT:
        if isinstance(data, dict) and set(data) == {"user", "assistant"}:
            return {"conversation": data}
        if _is_turn_list(data) and len(data) == 1:
            return {"conversation": data[0]}
        if isinstance(data, dict) and len(data) == 1:
            ((key, value),) = data.items()
            if key in ("conversation", "conversations") and _is_turn_list(value) and len(value) == 1:
                return {"conversation": value[0]}
            if key == "conversations" and isinstance(value, dict):
                return {"conversation": value}
        return data
    if _is_turn_list(data):
        return {"conversations": data}
    if isinstance(data, dict) and set(data) == {"user", "assistant"}:
        return {"conversations": [data]}
    if isinstance(data, dict) and len(data) == 1:
        ((key, value),) = data.items()
        if key == "conversation" and _is_turn_list(value):
            return {"conversations": value}
        if key in ("conversation", "conversations") and isinstance(value, dict) and set(value) == {"user", "assistant"}:
            return {"conversations": [value]}
    return data


def _path(error: Any) -> str:  # a jsonschema ValidationError
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else "(top level)"


def _text_ok(value: Any) -> bool:
    # The schema's text: a string, minLength 1, pattern "\S" (searched). ``str.isspace`` and the
    # regex class "\s" use the same Unicode whitespace table, so this is the same test.
    return isinstance(value, str) and bool(value) and not value.isspace()


def _turn_ok(turn: Any) -> bool:
    return (
        isinstance(turn, dict)
        and len(turn) == 2
        and "user" in turn
        and "assistant" in turn
        and _text_ok(turn["user"])
        and _text_ok(turn["assistant"])
    )


def _fast_shape(data: Any, kind: str, lo: int, hi: int) -> bool:
    """True when ``data`` certainly passes the conversation schema (plain Python checks of the
    same rules, about 50 times faster than jsonschema). False means "let jsonschema decide and
    word the error": this never accepts anything the schema rejects."""
    if not isinstance(data, dict) or len(data) != 1:
        return False
    if kind == INSTRUCT:
        return _turn_ok(data.get("conversation"))
    turns = data.get("conversations")
    return isinstance(turns, list) and lo <= len(turns) <= hi and all(_turn_ok(turn) for turn in turns)


def check_shape(data: Any, rules: Rules) -> tuple[Turn, ...] | Rejected:
    """Turns of a parsed answer, or the schema / turn-count problem."""
    data = normalize_shape(data, rules.type)
    lo, hi = rules.bounds
    if _fast_shape(data, rules.type, lo, hi):
        return _turns_of(data, rules)
    validator = _validator(rules.type, lo, hi)
    errors = list(validator.iter_errors(data))
    if errors:
        count_errors = [
            e for e in errors if e.validator in ("minItems", "maxItems") and list(e.absolute_path) == ["conversations"]
        ]
        if count_errors and len(count_errors) == len(errors):
            n = len(data["conversations"])
            return Rejected("turn_count", f"{n} turns; the spec asks for {lo} to {hi}")
        from jsonschema.exceptions import best_match

        error = best_match(e for e in errors if e not in count_errors) if len(errors) > len(count_errors) else errors[0]
        message = error.message
        if error.validator == "pattern":
            message = "a turn is empty (only whitespace)"
        return Rejected("schema", f"{_path(error)}: {message}"[:300])
    return _turns_of(data, rules)


def _turns_of(data: Any, rules: Rules) -> tuple[Turn, ...]:
    if rules.type == INSTRUCT:
        pair = data["conversation"]
        return (Turn(pair["user"].strip(), pair["assistant"].strip()),)
    return tuple(Turn(t["user"].strip(), t["assistant"].strip()) for t in data["conversations"])


# --- turn and elimination rules ----------------------------------------------------------------

# A standard English stop-word list (the NLTK one, slightly extended with contractions' parts).
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "ain",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "couldn",
        "d",
        "did",
        "didn",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "hadn",
        "has",
        "hasn",
        "have",
        "haven",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "itself",
        "just",
        "ll",
        "m",
        "ma",
        "me",
        "mightn",
        "more",
        "most",
        "mustn",
        "my",
        "myself",
        "needn",
        "no",
        "nor",
        "not",
        "now",
        "o",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "re",
        "s",
        "same",
        "shan",
        "she",
        "should",
        "shouldn",
        "so",
        "some",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "ve",
        "very",
        "was",
        "wasn",
        "we",
        "were",
        "weren",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "won",
        "wouldn",
        "y",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)

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
    return any(hint in folded for hint in _REFUSAL_HINTS)


def words(text: str) -> list[str]:
    low = text.lower()
    # On ASCII text the two patterns find the same words; the ASCII one is faster.
    return (_WORD_ASCII if low.isascii() else _WORD).findall(low)


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
    return _gates(turns, rules, prefix)


def _gates(turns: Sequence[Turn], rules: Rules, prefix: Sequence[Turn]) -> Rejected | None:
    """The quality gates (:mod:`fountain.generation.gates`) of a spec's rules."""
    if rules.scene is None:
        return None
    from fountain.generation.gates import run_gates

    failed = run_gates(turns, rules.scene, prefix=prefix)
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
