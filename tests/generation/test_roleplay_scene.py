"""The scene card each side of a turn-by-turn conversation reads: the reader's own role is "you"
(the local model copied "the counselee (you)" into its lines: README command 1's output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fountain.generation.roleplay import Roleplay, _second_person
from fountain.spec.load import load_spec

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_the_user_reads_its_own_role_as_you_without_a_parenthesis():
    play = Roleplay.from_spec(load_spec(SAMPLES / "marriage_counsel"))
    assert "(you)" not in play.user_scene
    assert "The counselor provides counseling to you." in play.user_scene
    assert "You are married to your partner." in play.user_scene
    assert "You provide counseling to your counselee." in play.assistant_scene


@pytest.mark.parametrize(
    ("verb", "expected"),
    [
        ("is married to", "are married to"),
        ("has", "have"),
        ("provides counseling to", "provide counseling to"),
        ("teaches", "teach"),
        ("carries", "carry"),
        ("owns", "own"),
        ("discusses", "discuss"),
        ("attend", "attend"),
    ],
)
def test_a_relationship_verb_agrees_with_you(verb, expected):
    assert _second_person(verb) == expected
