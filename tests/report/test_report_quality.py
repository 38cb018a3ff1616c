"""The report's quality section: per-turn figures defined in the report, and loud warnings."""

from __future__ import annotations

from fountain.diagram.parser import parse
from fountain.report.quality import DEFINITIONS, quality_section

DIAGRAM = parse(
    """erDiagram
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"
    COUNSELEE {
        string name
        string concern "frequent arguments about money and chores"
    }
    %% Topic: marriage guidance
"""
)


def conv(*texts):
    roles = ("user", "assistant")
    return [(roles[i % 2], t) for i, t in enumerate(texts)]


GOOD = conv(
    "We keep arguing about money and chores, and it is wearing us down.",
    "That sounds hard. Which argument about money happened most recently?",
    "Last night, about the electricity bill. I felt blamed.",
    "Feeling blamed hurts. What would you have liked your partner to say instead?",
)
NAMES = conv("John Smith", "Sarah Johnson", "How are you today?", "the user")
BAD = conv(
    "Hello, welcome to our clinic. I'm Dr. Smith. What brings you here today?",
    "I am fine and we argue about money and",
    "Hello, welcome to our clinic. I'm Dr. Smith. What brings you here today? Please sit.",
    "Thanks.",
)


def test_good_conversations_score_clean():
    q = quality_section([GOOD], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    f = q["figures"]
    assert f["cut_off_rate"] == 0 and f["echo_rate"] == 0 and f["placeholder_rate"] == 0
    assert f["user_as_assistant_rate"] == 0 and f["grounded_rate"] == 1.0
    assert q["warnings"] == []


def test_a_list_of_names_is_all_placeholders_and_ungrounded_warns_loudly():
    q = quality_section([NAMES], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    assert q["figures"]["placeholder_rate"] == 0.75  # all but "How are you today?"
    assert q["figures"]["grounded_rate"] == 0
    assert any(w.startswith("GROUNDING IS 0") for w in q["warnings"])


def test_role_reversal_echo_and_cut_off_are_counted_per_turn():
    q = quality_section([BAD], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    f = q["figures"]
    assert f["user_as_assistant_rate"] == 1.0  # both user turns greet as the clinic
    assert f["echo_rate"] == 0.25  # the second user turn is the first plus a sentence
    assert f["cut_off_rate"] == 0.25
    assert any("speak as the assistant" in w for w in q["warnings"])


def test_in_role_below_90_percent_warns():
    rc = {"user": {"n": 10, "reads_as_other": 0.2, "reads_as_own": 0.5}, "assistant": {"n": 0}, "overall": 0.8}
    q = quality_section([GOOD], diagram=DIAGRAM, role_consistency=rc)
    assert any(w.startswith("IN-ROLE IS 80%") for w in q["warnings"])
    assert q["figures"]["neutral_share"] == 0.3


# README command 1's output (SmolLM2-135M), abridged: both speakers mostly agree and praise.
AGREEING = conv(
    "I'm glad you agree with me, and I completely understand your concern about money.",
    "I'm glad I can share this with you, and it's a topic many couples struggle to discuss.",
    "You're right, I appreciate your feedback on how we talk about the bills.",
    "Absolutely! It's a delicate balance when you look at every part of a marriage.",
    "Your story is truly inspiring, and I'm happy we connected on this topic.",
    "Thank you for sharing this with me. Family is what makes life worth living.",
)


def test_a_conversation_that_only_agrees_is_measured_and_warned_about():
    q = quality_section([AGREEING], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    assert q["figures"]["agreement_rate"] == 1.0
    assert any("agreeing with or praising" in w for w in q["warnings"])
    good = quality_section([GOOD], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    assert good["figures"]["agreement_rate"] == 0


def test_agreement_needs_the_opening_not_a_word_inside():
    q = quality_section(
        [conv("We do not agree on money at all.", "Which of you is right about the budget, do you think?")]
    )
    assert q["figures"]["agreement_rate"] == 0


def test_the_janus_gpt4_reference_of_agreement_is_what_this_module_measures():
    import json
    from pathlib import Path

    import pytest

    folder = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus" / "coding_assist_gpt"
    if not folder.is_dir():
        pytest.skip("the Janus corpus (../shared/corpus/janus) is not here")
    conversations = []
    for record in json.loads((folder / "outputs.json").read_text(encoding="utf-8")):
        turns = record["conversations"]
        turns = [turns] if isinstance(turns, dict) else turns
        conversations.append([m for t in turns for m in (("user", t["user"]), ("assistant", t["assistant"]))])
    rate = quality_section(conversations)["figures"]["agreement_rate"]
    assert round(rate, 3) == DEFINITIONS["agreement_rate"][2]


def test_every_metric_is_defined_with_a_janus_reference():
    q = quality_section([GOOD])
    assert set(q["definitions"]) == set(DEFINITIONS)
    for d in q["definitions"].values():
        assert d["measures"] and d["good"] and d["janus_gpt4"] is not None


def test_the_html_report_shows_the_quality_section_with_its_warnings():
    from fountain.report.html import _quality_html

    q = quality_section([NAMES], diagram=DIAGRAM, user_role="COUNSELEE", assistant_role="COUNSELOR")
    page = _quality_html(q)
    assert "placeholder rate" in page and "Janus GPT-4" in page
    assert "WARNING: GROUNDING IS 0" in page


MARRIED = parse(
    """erDiagram
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"
    COUNSELEE ||--|| PARTNER : "is married to"
    COUNSELEE {
        string concern "frequent arguments about money and chores"
    }
"""
)


def test_user_as_assistant_uses_the_diagrams_relations_like_the_gate():
    """'your husband' in a user line is the counselor speaking when the diagram marries the
    counselee: the report counts it exactly as ``gate:role_reversal`` rejects it."""
    from fountain.generation.gates import RoleReversal, Scene

    observer = "It seems like your husband is just as passionate about money as you are."
    own = "My husband and I argue about money and chores every week."
    conversation = conv(observer, "What happens in those arguments?", own, "Thank you for telling me.")
    q = quality_section([conversation], diagram=MARRIED, user_role="COUNSELEE", assistant_role="COUNSELOR")
    assert q["figures"]["user_as_assistant_rate"] == 0.5
    scene = Scene.from_diagram(MARRIED, "COUNSELEE", "COUNSELOR")
    assert not RoleReversal().check_message("user", observer, scene)[0]
    assert RoleReversal().check_message("user", own, scene)[0]
    # Without the relation (no diagram) the line is read as neutral, as before.
    plain = quality_section([conversation], user_role="COUNSELEE", assistant_role="COUNSELOR")
    assert plain["figures"]["user_as_assistant_rate"] == 0
