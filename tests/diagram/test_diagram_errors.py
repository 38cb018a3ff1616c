"""Bad diagrams: each one a DiagramError whose message, line, column and hint say what is wrong."""

from __future__ import annotations

import pytest

from fountain.diagram import parse
from fountain.errors import DiagramError, FountainError


def error_of(text: str, **kwargs) -> DiagramError:
    with pytest.raises(DiagramError) as caught:
        parse(text, **kwargs)
    error = caught.value
    assert isinstance(error, FountainError)
    assert "bug in fountain" not in str(error)
    return error


def assert_at(error: DiagramError, line: int, column: int) -> None:
    assert (error.line, error.column) == (line, column), str(error)


def caret_column(error: DiagramError) -> int:
    """The column the caret under the shown source line points at (1-based)."""
    caret_line = [line for line in str(error).splitlines() if line.strip() == "^"][0]
    return caret_line.index("^") - 4 + 1


def test_missing_header():
    error = error_of("\n\n  CUSTOMER ||--o{ ORDER : places\n")
    assert "does not start with `erDiagram`" in error.message
    assert error.hint.startswith("the first statement must be `erDiagram`")
    assert_at(error, 3, 3)
    assert "    CUSTOMER ||--o{ ORDER : places" in str(error) and caret_column(error) == 3


def test_header_in_the_wrong_case_and_other_diagram_types():
    error = error_of("ERDiagram\nA")
    assert "`ERDiagram` must be written `erDiagram`" in error.message
    assert_at(error, 1, 1)
    error = error_of("%% a note\nclassDiagram\n  class A")
    assert "this is a mermaid `classDiagram`, not an `erDiagram`" in error.message
    assert_at(error, 2, 1)


def test_empty_diagram():
    error = error_of(" \n%% just a comment\n\n")
    assert error.message == "the diagram is empty"
    assert error.line is None and "erDiagram" in error.hint


def test_unknown_cardinality_word():
    error = error_of("erDiagram\n  CUSTOMER xxx ORDER : places")
    assert error.message.startswith("unknown cardinality `xxx`")
    assert_at(error, 2, 12)
    assert "||--o{" in error.hint


def test_unknown_cardinality_symbol():
    error = error_of("erDiagram\nA ||--o{ B : ok\nA |x--o{ B : has")
    assert error.message.startswith("unknown cardinality `|x--o{`")
    assert_at(error, 3, 3)


def test_missing_link_between_cardinalities():
    error = error_of("erDiagram\nA ||-o{ B : has")
    assert "expected `--` or `..`" in error.message and "found the character `-`" in error.message
    assert_at(error, 2, 5)


def test_missing_second_cardinality():
    error = error_of("erDiagram\nA ||-- B : has")
    assert "expected a cardinality such as o{" in error.message and "found `B`" in error.message
    assert_at(error, 2, 8)


def test_relationship_without_label():
    error = error_of("erDiagram\nA ||--o{ B\nC")
    assert "expected `:` and a label after the second entity, found the end of the line" in error.message
    assert "CUSTOMER ||--o{ ORDER : places" in error.hint
    assert_at(error, 2, 11)
    error = error_of("erDiagram\nA ||--o{ B")
    assert "found the end of the diagram" in error.message
    assert_at(error, 2, 11)


def test_colon_without_label():
    error = error_of("erDiagram\nA ||--o{ B :   \nC")
    assert "expected a label after `:`" in error.message
    assert_at(error, 2, 16)


def test_empty_quoted_name():
    error = error_of('erDiagram\n  ""\n')
    assert error.message.startswith("an entity name cannot be empty quotes")
    assert_at(error, 2, 3)


def test_unterminated_quote_in_a_name_and_in_a_label():
    error = error_of('erDiagram\nA ||--o{ "Delivery address : uses\n')
    assert error.message.startswith("this quote is never closed")
    assert_at(error, 2, 10)
    error = error_of('erDiagram\nA ||--o{ B : "places\nC')
    assert error.message.startswith("this quote is never closed")
    assert_at(error, 2, 14)


def test_forbidden_character_in_a_quoted_name():
    error = error_of('erDiagram\n  "Blo%rf" ||--o{ B : x')
    assert error.message.startswith("a quoted entity name cannot contain `%`")
    assert_at(error, 2, 7)
    error = error_of('erDiagram\n"Blo\\rf"')
    assert "cannot contain `\\`" in error.message
    assert_at(error, 2, 5)


def test_character_not_allowed_in_a_bare_name():
    error = error_of("erDiagram\n  Blo~rf\n")
    assert error.message.startswith("`~` cannot appear in an unquoted entity name")
    assert '"Blo~rf"' in error.hint
    assert_at(error, 2, 6)


def test_unterminated_attribute_block():
    error = error_of("erDiagram\nBOOK {\n  string title\n  string author\n")
    assert error.message.startswith("the attribute block opened on line 2 is never closed")
    assert error.hint == "end the block with `}`"
    assert_at(error, 4, 16)


def test_relationship_inside_an_unclosed_block():
    error = error_of("erDiagram\nBOOK {\n  string title\nAUTHOR ||--o{ BOOK : writes\n}")
    assert "expected an attribute name after the type, found `||`" in error.message
    assert "block opened on line 2 is still open here" in error.hint
    assert_at(error, 4, 8)


def test_bad_attribute_name():
    error = error_of("erDiagram\nBOOK {\n  string 0author\n}")
    assert "expected an attribute name after the type, found `0author`" in error.message
    assert_at(error, 3, 10)


def test_attribute_without_a_name():
    error = error_of("erDiagram\nBOOK {\n  string\n}")
    assert "expected an attribute name after the type, found the end of the line" in error.message
    assert_at(error, 3, 9)


def test_dangling_key_list():
    error = error_of("erDiagram\nBOOK {\n  string isbn PK,\n}")
    assert "expected a key (PK, FK or UK) after `,`" in error.message
    assert_at(error, 3, 18)


def test_unclosed_alias():
    error = error_of('erDiagram\nCUSTOMER["Customer"\n')
    assert "expected `]` to close the alias" in error.message
    assert_at(error, 2, 20)


def test_trailing_comment_on_a_statement_line():
    error = error_of('erDiagram\nA ||--o{ B : "x"   %% a note\n')
    assert error.message.startswith("a `%%` comment must be on a line of its own")
    assert_at(error, 2, 20)


def test_unknown_direction():
    error = error_of("erDiagram\n  direction TD\n")
    assert error.message.startswith("unknown direction `TD`")
    assert "TB, BT, LR or RL" in error.hint
    assert_at(error, 2, 13)


def test_unclosed_acc_descr_block():
    error = error_of("erDiagram\naccDescr {\n  a long description\nA ||--o{ B : x\n")
    assert error.message.startswith("the `accDescr {` block is never closed")
    assert_at(error, 2, 10)


def test_front_matter_problems():
    error = error_of("---\ntitle: x\nerDiagram\nA")
    assert error.message.startswith("the front matter is never closed")
    assert_at(error, 1, 1)
    error = error_of("---\ntitle: [x\n---\nerDiagram\nA")
    assert error.message.startswith("the front matter is not valid YAML")
    assert error.line == 2


def test_unclosed_directive():
    error = error_of('%%{init: {"theme": "dark"}\nerDiagram\nA')
    assert error.message.startswith("the directive is never closed")
    assert_at(error, 1, 1)


def test_second_header():
    error = error_of("erDiagram\nA\n  erDiagram\nB")
    assert error.message.startswith("`erDiagram` appears a second time")
    assert_at(error, 3, 3)


def test_error_location_names_the_file_and_windows_long_lines():
    line = "A ||--o{ B : x; " * 30 + "C ~ D"
    error = error_of("erDiagram\n" + line, path="scene.mermaid")
    assert str(error).startswith(f"scene.mermaid:2:{len(line) - 2}: ")
    shown = str(error).splitlines()
    assert shown[1].startswith("    …") and len(shown[1]) < 130
    assert shown[1][shown[2].index("^")] == "~"


def test_not_text_and_nul_bytes():
    error = error_of(b"erDiagram\nA")  # type: ignore[arg-type]
    assert "must be text, not bytes" in error.message
    error = error_of("erDiagram\nA\x00B")
    assert "NUL byte" in error.message and error.line == 2
