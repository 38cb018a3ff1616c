"""Directions: free styles keep the original sentence; named Evol-Instruct operations and aliases."""

from __future__ import annotations

import pytest

from fountain.errors import SpecError
from fountain.spec.directions import (
    EVOL,
    OPERATIONS,
    STYLE,
    normalise,
    resolve_direction,
)


def test_free_style_keeps_the_original_sentence():
    direction = resolve_direction("diverse")
    assert direction.kind == STYLE and direction.operation is None
    assert direction.instructions == 'The direction or the style of the conversation should be "diverse".'
    assert resolve_direction("  very formal ").name == "very formal"


@pytest.mark.parametrize(
    "name,operation",
    [
        ("add_constraints", "add_constraints"),
        ("add-constraints", "add_constraints"),
        ("Constraints", "add_constraints"),
        ("deepen", "deepen"),
        ("in-depth", "deepen"),
        ("In_Depth", "deepen"),
        ("depth", "deepen"),
        ("concretize", "concretize"),
        ("increase_reasoning", "increase_reasoning"),
        ("reasoning", "increase_reasoning"),
        ("increase-reasoning", "increase_reasoning"),
        ("breadth", "breadth"),
        ("in-breadth", "breadth"),
        ("IN BREADTH", "breadth"),
        ("general", "general"),
        ("GENERAL", "general"),
    ],
)
def test_named_operations_and_aliases(name, operation):
    direction = resolve_direction(name)
    assert direction.kind == EVOL
    assert direction.operation == operation
    assert direction.instructions == OPERATIONS[operation]
    assert direction.name == name.strip()  # the spec's spelling is kept (legacy prompts show it)


def test_every_operation_has_distinct_instructions_without_template_leaks():
    texts = list(OPERATIONS.values())
    assert len(set(texts)) == len(texts) == 6
    for text in texts:
        lowered = text.lower()
        assert "given prompt" not in lowered and "#rewritten" not in lowered and "erdiagram" not in lowered


def test_normalise():
    assert normalise("In--Depth") == "in_depth"
    assert normalise(" add constraints ") == "add_constraints"


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_direction_is_an_error(bad):
    with pytest.raises(SpecError):
        resolve_direction(bad)
