"""Property tests: whatever text comes in, parse() answers with a Diagram or a DiagramError, quickly."""

from __future__ import annotations

import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fountain.diagram import Diagram, parse  # noqa: E402
from fountain.errors import DiagramError  # noqa: E402

VALID = [
    'erDiagram\n    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"\n\n    %% Topic: marriage guidance',
    'erDiagram\nCUSTOMER["Customer"]:::vip {\n  string name PK "full name"\n  int id PK, FK\n'
    "  type~T~ t\n  string[] tags\n  `my.type` `geo.accuracy`\n  string? nick UK\n}\n"
    'CUSTOMER ||--o{ ORDER : places\nORDER }|..|{ "Delivery Address" : uses\n',
    '---\ntitle: T\n---\n%%{init: {"theme": "dark"}}%%\nerDiagram\ndirection LR\naccTitle: t\n'
    "accDescr {\n a\n b\n}\nA one or more optionally to zero or one B : x; C 1--many(1) D : y\n"
    'style A fill:#f9f\nclassDef c fill:#fff\nclass A c\nPROJECT u--o{ TEAM : "parent"\n',
]

# Characters that matter to the grammar, plus some that do not.
ALPHABET = st.sampled_from(list("AZaz09_-*.\"'`~|}{o()[],:;%# \n\t\r?+\\é€") + ["\x00", "\u2028"])


def _check(text: str) -> None:
    start = time.perf_counter()
    try:
        result = parse(text)
    except DiagramError as error:
        message = str(error)
        # The parser's own explanation must not have crashed into the catch-all.
        assert "bug in fountain" not in message, message
        if error.line is not None:
            assert error.line >= 1
        if error.column is not None:
            assert error.column >= 1
    else:
        assert isinstance(result, Diagram)
        data = result.to_dict()
        assert set(data) == {"entities", "relationships", "notes"}
        for rel in data["relationships"]:
            assert rel["left"] in data["entities"] and rel["right"] in data["entities"]
        result.describe()
    assert time.perf_counter() - start < 2.0


@st.composite
def mutated(draw):
    """A valid diagram with a few characters inserted, deleted or swapped."""
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        position = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["insert", "delete", "swap"]))
        if action == "insert":
            text = text[:position] + draw(ALPHABET) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + 1 :]
        elif position + 1 < len(text):
            text = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    return text


@settings(max_examples=250, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_diagrams_parse_or_raise_diagram_error(text):
    _check(text)


TOKENS = st.sampled_from(
    [
        "erDiagram",
        "\n",
        " ",
        ";",
        "A",
        "B",
        '"Quoted name"',
        '""',
        "1",
        "u",
        "one",
        "many",
        "to",
        "optionally to",
        "||",
        "|o",
        "o{",
        "}|",
        "|{",
        "--",
        "..",
        ".-",
        ":",
        ":::",
        "c1",
        ",",
        "{",
        "}",
        "string",
        "name",
        "PK",
        "FK",
        '"comment"',
        "[",
        "]",
        "%% note",
        "style",
        "classDef",
        "class",
        "direction TB",
        "accTitle: t",
        "accDescr {",
        "~T~",
        "`x.y`",
        "?",
        "---",
        "%%{init: {}}%%",
    ]
)


@settings(max_examples=250, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=40).map("".join))
def test_random_token_soup_never_crashes(text):
    _check(text)


@settings(max_examples=100, deadline=2000)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    _check(text)


@settings(max_examples=60, deadline=2000)
@given(st.text(max_size=80))
def test_random_text_after_header_never_crashes(text):
    _check("erDiagram\n" + text)


def test_large_diagram_is_linear():
    lines = ["erDiagram"] + [f'E{i} ||--o{{ E{i + 1} : "rel {i}"' for i in range(3000)]
    start = time.perf_counter()
    diagram = parse("\n".join(lines))
    assert len(diagram.relationships) == 3000 and len(diagram.entities) == 3001
    assert time.perf_counter() - start < 10


def test_deep_nesting_characters_are_an_error_not_a_crash():
    with pytest.raises(DiagramError):
        parse("erDiagram\nA " + "{" * 5000)
    with pytest.raises(DiagramError):
        parse("erDiagram\n" + "[" * 5000)
