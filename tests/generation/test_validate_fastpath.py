"""The fast paths of validation give the answers of the slow ones (jsonschema, the refusal regex)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fountain.generation.rules import Rejected, Rules
from fountain.generation.shape import _fast_shape, _validator, check_shape, normalize_shape
from fountain.generation.validate import _REFUSAL, _may_refuse, check_turns
from fountain.types import Turn

TEXTS = ["", " ", "\u00a0", "\u2003x", "a", "hello there", "\n\t", "\u200b", "\x1c", "\x85", "\u3000"]


def _value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if r < 0.4:
        return rng.choice(TEXTS)
    if r < 0.5:
        return rng.choice([1, None, True, 2.5, [], {}])
    if r < 0.75 and depth < 3:
        return {rng.choice(["user", "assistant", "x"]): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return "x"


def _turn(rng: random.Random):
    if rng.random() < 0.8:
        turn = {"user": rng.choice(TEXTS), "assistant": rng.choice(TEXTS)}
        if rng.random() < 0.1:
            turn["extra"] = 1
        if rng.random() < 0.1:
            turn.pop("user")
        return turn
    return _value(rng)


@pytest.mark.parametrize("kind,lo,hi", [("conversation", 1, 3), ("conversation", 2, 2), ("instruct", 1, 1)])
def test_the_fast_shape_check_agrees_with_the_schema(kind, lo, hi):
    rng = random.Random(f"{kind}{lo}{hi}")
    validator = _validator(kind, lo, hi)
    disagreements = 0
    for _ in range(3000):
        if kind == "instruct":
            data = {"conversation": _turn(rng)} if rng.random() < 0.9 else _value(rng)
        else:
            data = (
                {"conversations": [_turn(rng) for _ in range(rng.randint(0, 4))]} if rng.random() < 0.9 else _value(rng)
            )
            if isinstance(data, dict) and rng.random() < 0.05:
                data["extra"] = 1
        fast = _fast_shape(data, kind, lo, hi)
        valid = not list(validator.iter_errors(data))
        assert valid or not fast, f"the fast check accepted what the schema rejects: {data!r}"
        disagreements += fast != valid
    assert disagreements == 0  # and it never sends a valid answer down the slow path


def test_check_shape_words_its_rejections_with_jsonschema():
    rules = Rules(min_turns=1, max_turns=2)
    problem = check_shape({"conversations": [{"user": "hi", "assistant": " "}]}, rules)
    assert isinstance(problem, Rejected) and problem.reason == "schema" and "empty" in problem.detail
    problem = check_shape({"conversations": [{"user": "a b", "assistant": "c d"}] * 3}, rules)
    assert isinstance(problem, Rejected) and problem.reason == "turn_count"
    assert check_shape(normalize_shape([{"user": " a b ", "assistant": "c d"}], "conversation"), rules) == (
        Turn("a b", "c d"),
    )


def test_the_refusal_prefilter_never_hides_a_refusal():
    # The four non-ASCII letters re.IGNORECASE equates with ASCII ones (U+0130, U+0131, U+017F,
    # U+212A) are in the mix, as are upper case and typographic apostrophes.
    pieces = [
        "sorry",
        "SORRY",
        "\u017forry",
        "apologise",
        "Apologize",
        "as an ai",
        "AS AN AI",
        "a\u017f an a\u0131",
        "as an AI language model",
        "i'm an ai",
        "I am just an AI",
        "\u0130'm an a\u0131",
        "i can't help",
        "I CANNOT assist",
        "i can\u2019t provide",
        "\u0130 won't comply",
        "\u0131 am unable to answer",
        "i won\u2019t do that",
        "but",
        " ",
        ".",
        "I",
        "can",
        "not",
        "able",
        "to",
        "help",
        "\u212a",
        "\u00e9t\u00e9",
    ]
    rng = random.Random(7)
    matched = 0
    for _ in range(20000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        if _REFUSAL.search(text):
            matched += 1
            assert _may_refuse(text, text.lower()), text
    assert matched > 1000


def test_each_message_is_tokenised_once(monkeypatch):
    import fountain.generation.validate as validate

    calls = []
    real_words = validate.words

    def spy(text):
        calls.append(text)
        return real_words(text)

    monkeypatch.setattr(validate, "words", spy)
    turns = (
        Turn("How do we split the rent?", "List the fixed costs first."),
        Turn("And the groceriés?", "Keep a shared note of them."),
    )
    assert check_turns(turns, Rules(min_turns=1, max_turns=4)) is None
    assert len(calls) == 4


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_words_are_the_unicode_patterns_words(text):
    import fountain.generation.validate as validate

    low = text.lower()
    assert validate._WORD_ASCII.findall(low) == validate._WORD.findall(low) == validate.words(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab'Z9 .,-_\n\"", max_size=40))
def test_split_words_are_the_patterns_words_around_apostrophes(text):
    """words() splits ASCII text at separators before matching: dense apostrophes, digits,
    underscores and quotes give the same words as the pattern over the whole text."""
    import fountain.generation.validate as validate

    assert validate.words(text) == validate._WORD.findall(text.lower())


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(list("ab #%{}é\n") + ["given prompt", "ERDiagram", "{{", "%s"]), max_size=20).map("".join),
    st.lists(st.text(alphabet="abz #{%}_-", min_size=1, max_size=6), max_size=4),
)
def test_the_leak_prefilter_never_hides_a_leak(text, extra_words):
    """_leak's anchor scan finds every leak the word-by-word scan finds (default and custom words)."""
    from fountain.generation.rules import LEAK_WORDS, Rules
    from fountain.generation.validate import _leak

    for leak_words in (LEAK_WORDS, tuple(extra_words)):
        rules = Rules(leak_words=leak_words)
        low = text.lower()
        expected = next((word for word in leak_words if word in low), None)
        assert _leak(text, rules) == expected
