"""Validation of model answers: extraction, schema, turn rules, elimination rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.shape import request_schema, validation_schema
from fountain.generation.utterance import clean_utterance, trim_to_sentence
from fountain.generation.validate import ExtractionError, extract_json, validate_completion
from fountain.types import Turn

RULES = Rules(min_turns=1, max_turns=4, delimiter="------------------------------", roles=("COUNSELEE", "COUNSELOR"))
GOOD = {
    "conversations": [
        {
            "user": "My wife and I argue about money every week.",
            "assistant": "Let us look at when those arguments start and what each of you expects.",
        },
        {
            "user": "Usually after payday, when the bills arrive.",
            "assistant": "Then a short budget meeting right after payday could take the heat out of it.",
        },
    ]
}


def check(answer, rules=RULES, **kw):
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return validate_completion(text, spec_or_rules=rules, **kw)


# --- extraction ---------------------------------------------------------------------------------


def test_plain_json_is_accepted():
    result = check(GOOD)
    assert isinstance(result, Accepted)
    assert result.turns[1] == Turn(
        "Usually after payday, when the bills arrive.",
        "Then a short budget meeting right after payday could take the heat out of it.",
    )


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "Sure! Here is the conversation:\n\n{}\n\nI hope this helps.",
        "```\n{}\n```\nLet me know if you want more.",
        "Here: [not json] and then {}",
    ],
)
def test_extraction_survives_fences_and_prose(wrap):
    result = check(wrap.format(json.dumps(GOOD)))
    assert isinstance(result, Accepted), result
    assert len(result.turns) == 2


def test_trailing_commas_are_tolerated():
    text = '{"conversations": [{"user": "Hello, I need help.", "assistant": "Of course, tell me more.",},],}'
    assert extract_json(text) == {
        "conversations": [{"user": "Hello, I need help.", "assistant": "Of course, tell me more."}]
    }


def test_commas_inside_strings_are_kept():
    text = '{"a": "x, }", "b": [1, 2,],}'
    assert extract_json(text) == {"a": "x, }", "b": [1, 2]}


def test_smart_quotes_used_as_json_quotes():
    text = "{\u201cconversations\u201d: [{\u201cuser\u201d: \u201cHi there\u201d, \u201cassistant\u201d: \u201cHello, how can I help?\u201d}]}"
    assert isinstance(check(text), Accepted)


def test_truncated_json_is_reported_as_truncated():
    text = json.dumps(GOOD)[:-30]
    with pytest.raises(ExtractionError) as info:
        extract_json(text)
    assert info.value.reason == "truncated"
    result = check(text)
    assert isinstance(result, Rejected) and result.reason == "truncated"


@pytest.mark.parametrize("text", ["", "   ", "I cannot write that conversation.", "{not: json}", "[1, 2"])
def test_no_json(text):
    result = check(text)
    assert isinstance(result, Rejected)
    assert result.reason in ("invalid_json", "truncated")
    assert result.detail


def test_finish_reason_length_marks_unparsable_text_truncated():
    result = check('{"conversations": [{"user": "a" "b"}]}', finish_reason="length")
    assert result.reason == "truncated"


# --- shape ----------------------------------------------------------------------------------------


def test_bare_list_of_turns_is_accepted():
    assert isinstance(check(GOOD["conversations"]), Accepted)


def test_messages_list_is_accepted():
    messages = [
        {"role": "user", "content": "I feel unheard at home."},
        {"role": "assistant", "content": "That sounds lonely. When did you last feel heard?"},
    ]
    result = check({"messages": messages})
    assert isinstance(result, Accepted) and result.turns[0].user == "I feel unheard at home."


@pytest.mark.parametrize(
    "data",
    [
        {"conversations": [{"question": "Hi", "answer": "Hello"}]},
        {"conversations": [{"human": "Hi", "gpt": "Hello"}]},
        {"dialogue": [{"user": "Hi", "assistant": "Hello"}]},
        {"conversations": [{"user": "Hi", "assistant": "Hello", "extra": "x"}]},
        {"conversations": [{"user": "Hi"}]},
        {"conversations": [{"user": 3, "assistant": "Hello"}]},
        {"conversations": GOOD["conversations"], "direction": "general"},
        '"just a JSON string"',
        ["a", "list", "of", "words"],
    ],
)
def test_wrong_keys_are_schema_errors(data):
    result = check(data)
    assert isinstance(result, Rejected)
    assert result.reason == "schema", result


@pytest.mark.parametrize(
    "turn", [{"user": "", "assistant": "Hello there"}, {"user": "Hello there", "assistant": "   \n "}]
)
def test_empty_turns_are_rejected(turn):
    result = check({"conversations": [turn]})
    assert result.reason == "schema"
    assert "empty" in result.detail or "short" in result.detail


def test_turn_count_bounds():
    many = {
        "conversations": [
            {
                "user": f"Question number {i} about our budget?",
                "assistant": f"Answer number {i}: track spending for a week.",
            }
            for i in range(5)
        ]
    }
    result = check(many)
    assert result.reason == "turn_count" and "5 turns" in result.detail
    result = check({"conversations": []})
    assert result.reason == "turn_count"
    assert isinstance(check(many, Rules(min_turns=5, max_turns=5)), Accepted)


def test_instruct_shape_and_near_misses():
    rules = Rules(type="instruct")
    pair = {
        "user": "We married young and now want different things in life.",
        "assistant": "Start by naming what each of you wants, then look for overlap.",
    }
    for data in ({"conversation": pair}, {"conversations": [pair]}, pair, [pair]):
        result = validate_completion(json.dumps(data), spec_or_rules=rules)
        assert isinstance(result, Accepted), data
        assert len(result.turns) == 1
    result = validate_completion(json.dumps({"conversations": [pair, pair]}), spec_or_rules=rules)
    assert isinstance(result, Rejected)


def test_parsed_data_is_accepted_directly():
    assert isinstance(validate_completion(GOOD, spec_or_rules=RULES), Accepted)


# --- turn and elimination rules --------------------------------------------------------------------


def _conv(*pairs):
    return {"conversations": [{"user": u, "assistant": a} for u, a in pairs]}


def test_refusal_under_80_words_is_eliminated():
    result = check(_conv(("Can you write my vows?", "I'm sorry, but I can't help with that request.")))
    assert result.reason == "elimination:refusal"
    result = check(_conv(("Can you write my vows?", "As an AI language model, I do not have feelings.")))
    assert result.reason == "elimination:refusal"


def test_empathy_is_not_a_refusal():
    result = check(_conv(("We fight a lot.", "I'm sorry to hear that. What do the fights usually start with?")))
    assert isinstance(result, Accepted)


def test_cant_help_but_is_not_a_refusal():
    result = check(_conv(("I am tired of this.", "I can't help but notice how tired you sound. What drains you most?")))
    assert isinstance(result, Accepted)
    result = check(_conv(("Write my essay.", "I can't help with writing your essay for school.")))
    assert result.reason == "elimination:refusal"


def test_long_apology_is_not_eliminated():
    long = "I'm sorry, but I can't promise a quick fix. " + "Here is a plan that works over time. " * 12
    assert isinstance(check(_conv(("Fix my marriage now.", long))), Accepted)


def test_stopwords_only_is_eliminated():
    result = check(_conv(("What?", "Tell me what happened last night.")))
    assert result.reason == "elimination:stopwords_only"
    result = check(_conv(("I need advice on trust.", "...!!")))
    assert result.reason == "elimination:stopwords_only"


@pytest.mark.parametrize(
    "leak",
    ["#Rewritten Prompt#", "the given prompt", "erDiagram", "%s", "{{ direction }}", "------------------------------"],
)
def test_leaked_template_words_are_eliminated(leak):
    result = check(_conv((f"Hello {leak} there", "Tell me more about your week.")))
    assert result.reason == "elimination:leaked_template", leak


def test_repetition_is_eliminated():
    same = ("We argue about chores.", "Let us make a list of chores together.")
    result = check(_conv(same, same))
    assert result.reason == "elimination:repetition"
    echo = check(_conv(("We argue about chores.", "We argue about chores!")))
    assert echo.reason == "elimination:repetition"


def test_no_information_gain_for_derivations():
    parent = (
        Turn("We argue about chores.", "Let us make a list of chores together."),
        Turn("He never does the dishes.", "Could you agree on who does them on which days?"),
    )
    copy = _conv((parent[1].user, parent[1].assistant))
    result = check(copy, kind="derivation", prefix=parent[:1], parent=parent)
    assert result.reason == "elimination:no_information_gain"
    # the same turn as a seed is fine
    assert isinstance(check(copy), Accepted)
    new = _conv(("And he forgets birthdays too.", "Let us talk about what birthdays mean to you."))
    assert isinstance(check(new, kind="derivation", prefix=parent[:1], parent=parent), Accepted)


def test_continuation_repeating_the_prefix_end_is_eliminated():
    prefix = (Turn("We argue about chores.", "Let us make a list of chores together."),)
    result = check(
        _conv(("Let us make a list of chores together.", "Good idea, let us start now.")),
        kind="derivation",
        prefix=prefix,
        parent=prefix,
    )
    assert result.reason == "elimination:repetition"


def test_nothing_crashes_on_odd_input():
    for data in (
        None,
        3,
        2.5,
        [],
        {},
        [[["deep"]]],
        {"conversations": None},
        {"conversations": [None]},
        "[" * 5000 + "]" * 5000,
        "{" * 3000,
    ):
        result = validate_completion(data if not isinstance(data, str) else data, spec_or_rules=RULES)
        assert isinstance(result, Rejected)


# --- schemas ----------------------------------------------------------------------------------------


def test_request_schema_has_bounds_and_no_refs():
    schema = request_schema(Rules(min_turns=2, max_turns=6))
    conv = schema["properties"]["conversations"]
    assert (conv["minItems"], conv["maxItems"]) == (2, 6)
    assert "$ref" not in json.dumps(schema) and "pattern" not in json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert conv["items"]["additionalProperties"] is False
    instruct = request_schema(Rules(type="instruct"))
    assert set(instruct["properties"]) == {"conversation"}
    # a fresh copy: editing it does not change the next one
    schema["properties"]["conversations"]["maxItems"] = 99
    assert request_schema(Rules(min_turns=2, max_turns=6))["properties"]["conversations"]["maxItems"] == 6


def test_validation_schema_is_valid_2020_12():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(validation_schema(RULES))


# --- turn-by-turn utterances ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("COUNSELEE: I feel lost lately.", "I feel lost lately."),
        ('**Counselor:** "Tell me more."', "Tell me more."),
        ("I feel lost. COUNSELOR: Tell me more.", "I feel lost."),
        ("I feel lost.\nCounselor: Tell me more.\nCounselee: ok", "I feel lost."),
        ("  Many   spaces\n\nand lines ", "Many spaces and lines"),
        ("User: hello there", "hello there"),
        ("Counselee (wife): We fight.", "We fight."),
        ("Note: this matters.", "Note: this matters."),
    ],
)
def test_clean_utterance(raw, expected):
    assert clean_utterance(raw, ("COUNSELEE", "COUNSELOR")) == expected


def test_trim_to_sentence_drops_an_unfinished_tail():
    assert (
        trim_to_sentence("I feel lost. My husband never listens. And then he")
        == "I feel lost. My husband never listens."
    )
    assert trim_to_sentence("no sentence end at all") == "no sentence end at all"


# --- property: nothing a model returns raises ------------------------------------------------------


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["user", "assistant", "conversations", "conversation", "messages", "role", "content", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300), _json, _json.map(json.dumps), _json.map(lambda v: "prose ```json\n" + json.dumps(v)[:-1])
    )
)
def test_any_answer_ends_accepted_or_rejected(answer):
    for rules in (RULES, Rules(type="instruct")):
        result = validate_completion(
            answer,
            spec_or_rules=rules,
            kind="derivation",
            prefix=(Turn("Hi there.", "Hello, what brings you here?"),),
            parent=(Turn("Hi there.", "Hello, what brings you here?"),),
        )
        assert isinstance(result, (Accepted, Rejected))
        if isinstance(result, Rejected):
            assert result.reason and result.detail


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_clean_utterance_never_raises(text):
    cleaned = clean_utterance(text, ("COUNSELEE", "COUNSELOR"))
    assert cleaned == cleaned.strip()


def test_single_word_placeholders_are_eliminated():
    result = check(_conv(("John", "Mike")))
    assert result.reason == "elimination:placeholder"
    result = check(_conv(("We need help with our budget.", "text1")))
    assert result.reason == "elimination:placeholder"


def test_narration_in_turn_by_turn_utterances():
    from fountain.generation.utterance import check_utterance

    rules = Rules(roles=("COUNSELEE", "MARRIAGE_COUNSELOR"))
    problem = check_utterance("The marriage counselor smiles and says hello.", "assistant", rules)
    assert problem.reason == "elimination:narration"
    assert check_utterance("Counselor, thank you for seeing me today.", "user", rules) is None
    assert check_utterance("I think the counselor is right about this.", "user", rules) is None
    assert check_utterance("...", "user", rules).reason == "elimination:stopwords_only"


def test_stage_directions_and_the_role_label():
    assert (
        clean_utterance("The counselor: I'm here *smiles warmly* to help.", ("COUNSELEE", "COUNSELOR"))
        == "I'm here to help."
    )
    # the local model's learner (language_tutoring, q2): directions in parentheses
    roles = ("LEARNER", "TUTOR")
    assert clean_utterance("(smiling, a bit nervously) I'm glad you understand.", roles) == "I'm glad you understand."
    assert clean_utterance("I love Spanish! (smiling)", roles) == "I love Spanish!"
    assert clean_utterance("I ordered (in Spanish) a coffee.", roles) == "I ordered (in Spanish) a coffee."


@pytest.mark.parametrize(
    "line",
    [
        # the local model's tech_support run (q2), each line as it was exported before this rule
        'I laughed and said, "You know what? I am glad you are doing this."',
        "The agent looked at you with a friendly smile and started scrolling on her phone.",
        "I turned to face you, and my expression was warm with a hint of sarcasm.",
        'We fixed it. You added, "But let me tell you something else."',
        '"Just want to know how I can help you today," I said with a smile.',
        "I smiled a little while I was explaining the router problem.",
        "The customer's voice has a low, nostalgic quality, and they look at the screen.",
    ],
)
def test_gestures_quoted_lines_and_a_roles_last_word_are_narration(line):
    from fountain.generation.utterance import check_utterance

    rules = Rules(roles=("CUSTOMER", "SUPPORT_AGENT"))
    assert check_utterance(line, "user", rules).reason == "elimination:narration"


@pytest.mark.parametrize(
    "line",
    [
        "My wife says we never talk about money, and I think she is right.",
        "I said I would call back after the router reset, so here I am.",
        "The agent on the phone yesterday told me to reset the router.",
        "I look at the bills every evening and feel sick about the money.",
    ],
)
def test_speaking_about_what_was_said_is_not_narration(line):
    from fountain.generation.utterance import check_utterance

    rules = Rules(roles=("CUSTOMER", "SUPPORT_AGENT"))
    assert check_utterance(line, "user", rules) is None
