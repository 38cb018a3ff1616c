"""Diagram coverage and role consistency of the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fountain.report.grounding import (
    coverage,
    grounding_items,
    reads_as,
    role_consistency,
    singular,
    words,
)

JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus"

DIAGRAM = {
    "entities": {
        "JUNIOR_DEVELOPER": {
            "alias": None,
            "attributes": [{"type": "proficient_language", "name": "java", "keys": None, "comment": None}],
        },
        "SENIOR_DEVELOPER": {
            "alias": "mentor",
            "attributes": [{"type": "string", "name": "team", "keys": None, "comment": "platform infrastructure"}],
        },
        "CODE_REVIEW": {"alias": None, "attributes": []},
        "BUG": {"alias": None, "attributes": []},
    },
    "relationships": [
        {"left": "SENIOR_DEVELOPER", "right": "JUNIOR_DEVELOPER", "label": "provides counseling to"},
        {"left": "JUNIOR_DEVELOPER", "right": "BUG", "label": ""},
    ],
    "notes": ["Topic: problem solving in Python", "Sessions happen on Friday afternoons"],
}


def test_coverage_of_exactly_half_the_entities_is_one_half():
    texts = [
        "As a junior developer I found a bug in the parser.",
        "Nothing about anyone here, just a chat about lunch.",
    ]
    result = coverage(texts, DIAGRAM)
    entities = result["entities"]
    assert entities["coverage"] == 0.5
    assert entities["mentioned"] == 2 and entities["total"] == 4
    counts = {item["name"]: item["conversations"] for item in entities["items"]}
    assert counts == {"JUNIOR_DEVELOPER": 1, "SENIOR_DEVELOPER": 0, "CODE_REVIEW": 0, "BUG": 1}


def test_matching_is_case_insensitive_with_underscores_as_spaces_and_simple_plurals():
    assert words("Junior_Developers' BUGS") == ["junior", "developer", "bug"]
    assert singular("categories") == "category" and singular("classes") == "class"
    assert singular("status") == "status" and singular("bus") == "bus"
    result = coverage(["Two JUNIOR DEVELOPERS met their Mentor for code reviews."], DIAGRAM)
    mentioned = {i["name"] for i in result["entities"]["items"] if i["conversations"]}
    # "Mentor" is SENIOR_DEVELOPER's alias; "code reviews" is the plural of CODE_REVIEW.
    assert mentioned == {"JUNIOR_DEVELOPER", "SENIOR_DEVELOPER", "CODE_REVIEW"}
    # whole words only: "bugle" is not "bug"
    assert coverage(["He played the bugle."], DIAGRAM)["entities"]["mentioned"] == 0


def test_attributes_by_name_or_by_the_facts_in_their_comment():
    by_name = coverage(["I mostly write Java."], DIAGRAM)["attributes"]
    assert [i["conversations"] for i in by_name["items"]] == [1, 0]
    # The comment holds the fact: half of its content words must appear.
    by_comment = coverage(["I work on infrastructure."], DIAGRAM)["attributes"]
    assert [i["conversations"] for i in by_comment["items"]] == [0, 1]
    assert coverage(["The team meets daily."], DIAGRAM)["attributes"]["mentioned"] == 0


def test_relations_by_label_phrase_label_words_or_both_ends():
    by_phrase = coverage(["She provides counseling to new hires."], DIAGRAM)["relations"]["items"]
    by_words = coverage(["Counseling is what he provides."], DIAGRAM)["relations"]["items"]
    by_ends = coverage(["The junior developer fixed the bug."], DIAGRAM)["relations"]["items"]
    assert [i["conversations"] for i in by_phrase] == [1, 0]
    assert [i["conversations"] for i in by_words] == [1, 0]
    assert [i["conversations"] for i in by_ends] == [0, 1]


def test_notes_by_content_words_ignoring_a_key_prefix():
    items = [i for i in grounding_items(DIAGRAM) if i.kind == "note"]
    assert items[0].some_words == {"problem", "solving", "python"}  # "Topic:" is not content
    result = coverage(["Let's do some problem solving.", "Python is fun.", "See you on Friday afternoon."], DIAGRAM)[
        "notes"
    ]
    # 1st text: 2 of 3 words of note 1; 2nd: 1 of 3 (not enough); 3rd: friday + afternoon of 4.
    assert [i["conversations"] for i in result["items"]] == [1, 1]
    assert result["coverage"] == 1.0


def test_coverage_accepts_a_parsed_diagram():
    diagram_module = pytest.importorskip("fountain.diagram")
    diagram = diagram_module.parse(
        'erDiagram\n  COUNSELOR ||--|{ COUNSELEE : "provides counseling to"\n  %% Topic: marriage guidance\n'
    )
    result = coverage(["The counselor gave marriage guidance."], diagram)
    assert result["entities"]["coverage"] == 0.5
    assert result["notes"]["coverage"] == 1.0
    assert result["overall"]["total"] == 4


def test_role_signals_on_clear_turns():
    assert reads_as("I'm struggling with my code. Can you help me?") == "user"
    assert reads_as("You should add a check at the start. I recommend writing a test first.") == "assistant"
    assert reads_as("Okay.") == "neutral"


def test_role_consistency_counts_turns_that_read_as_the_other_role():
    users = [
        "I'm worried about my marriage. What should I do?",
        "You should try talking calmly.",
        "Thanks.",
        "Can you explain that again?",
    ]
    assistants = ["It sounds like you feel unheard. I recommend a weekly talk.", "Let me explain."]
    result = role_consistency(users, assistants)
    assert result["user"] == {"n": 4, "in_role": 0.75, "reads_as_other": 0.25, "reads_as_own": 0.5}
    assert result["assistant"]["in_role"] == 1.0
    assert result["overall"] == pytest.approx((0.75 + 1.0) / 2)


@pytest.mark.skipif(not (JANUS / "marriage_counsel" / "outputs.json").is_file(), reason="Janus corpus absent")
def test_role_consistency_is_high_on_real_model_output_and_drops_when_roles_are_swapped():
    data = json.loads((JANUS / "marriage_counsel" / "outputs.json").read_text(encoding="utf-8"))
    users = [turn["user"] for record in data for turn in record["conversations"]]
    assistants = [turn["assistant"] for record in data for turn in record["conversations"]]
    assert role_consistency(users, assistants)["overall"] > 0.9
    assert role_consistency(assistants, users)["overall"] < 0.5
