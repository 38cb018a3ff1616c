"""The gates' shortcuts find what the plain patterns find: the last-character check of a cut-off,
the abbreviation searched in the tail, the long sentences, and the 4-gram test that lets the
sentence-repetition check skip a conversation."""

from __future__ import annotations

import re

import pytest

from fountain.generation.gate_text import (
    SENTENCE_MIN_WORDS,
    Conversation,
    MessageText,
    ends_a_sentence,
    may_repeat_a_sentence,
    prose,
)
from fountain.generation.gates import _ABBREVIATION, ABBREVIATION_TAIL
from fountain.generation.validate import words
from fountain.types import Turn

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ENDS = re.compile(r"(?:[.!?…:;)\]}\"'”’*`~>]|[\U0001F300-\U0001FAFF\u2600-\u27BF])\s*$")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_CODE_MARKS = re.compile(r"[=()\[\]{}#<>]")


def test_the_last_character_check_is_the_cut_off_pattern():
    for code in [*range(0x0, 0x3000), *range(0x2600, 0x2800), *range(0x1F000, 0x1FC00)]:
        if 0xD800 <= code <= 0xDFFF:
            continue
        text = ("so " + chr(code)).rstrip()
        assert ends_a_sentence(text) == bool(_ENDS.search(text)), hex(code)


WORDS = st.sampled_from(
    ["dr", "Dr", "mr", "mrs", "ms", "prof", "st", "ſt", "e.g", "i.e", "etc", "etc.", "and", "vs", "x", "the", "İ"]
)
TEXTS = st.lists(
    st.tuples(WORDS, st.sampled_from([" ", ".", ". ", "\n", "-", ", ", "'", "!", "? ", "`", "``` "])), max_size=14
).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_the_abbreviation_is_found_in_the_tail(text):
    stripped = text.rstrip()
    if stripped:
        tail = stripped[-1] == "." and bool(_ABBREVIATION.search(stripped[-ABBREVIATION_TAIL:]))
        assert tail == bool(_ABBREVIATION.search(stripped))


def _sentences(text: str) -> set[tuple[str, ...]]:
    found = {tuple(words(s)) for s in _SENTENCE.findall(prose(text)) if not _CODE_MARKS.search(s)}
    return {s for s in found if len(s) >= SENTENCE_MIN_WORDS}


LONG = st.lists(
    st.sampled_from(["we", "talk", "about", "money", "every", "single", "week", "again", "and", "it", "hurts", "(x)"]),
    min_size=0,
    max_size=24,
).map(" ".join)
MESSAGES = st.lists(st.tuples(LONG, st.sampled_from([". ", "! ", "\n", " ", "? "])), max_size=4).map(
    lambda parts: "".join(a + b for a, b in parts)
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_long_sentences_are_the_plain_computation(text):
    assert MessageText(text).sentences == _sentences(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(MESSAGES, MESSAGES), min_size=1, max_size=4), st.integers(0, 2))
def test_no_shared_grams_means_no_repeated_sentence(pairs, prefix_turns):
    turns = tuple(Turn(u, a) for u, a in pairs)
    prefix_turns = min(prefix_turns, len(turns) - 1)
    conversation = Conversation(turns[prefix_turns:], turns[:prefix_turns])
    start = 2 * prefix_turns
    if may_repeat_a_sentence(conversation.views, start):
        return
    seen: dict[str, set[tuple[str, ...]]] = {"user": set(), "assistant": set()}
    for i, (role, view) in enumerate(conversation.views):
        sentences = _sentences(view.text)
        if i >= start:
            assert not sentences & seen[role]
        seen[role] |= sentences


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abZ9' .,-_\n\"é", max_size=40))
def test_stems_from_the_words_are_the_stems_of_the_text(text):
    """On ASCII text the stems come from the words already split; they equal facts.stems."""
    from fountain.generation.facts import stems

    assert MessageText(text).stems == stems(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "a b", "`x`", "d."]), max_size=30))
def test_the_gram_set_and_count_are_those_of_the_gram_list(pieces):
    text = " ".join(pieces)
    fresh, listed = MessageText(text), MessageText(text)
    assert fresh.gram_set == frozenset(listed.grams) == listed.gram_set
    assert fresh.gram_count == len(listed.grams)
