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
