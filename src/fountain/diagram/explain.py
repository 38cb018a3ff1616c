"""Lark's parse errors turned into one located :class:`~fountain.errors.DiagramError` in words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fountain.diagram.model import _OTHER_DIAGRAMS
from fountain.errors import DiagramError


@dataclass
class Source:
    """The text as the user wrote it (line endings normalised) and the cleaned text the grammar reads."""

    original: str
    clean: str
    notes: list[str] = field(default_factory=list)
    title: str | None = None
    path: str | None = None
    line_shift: int = 0  # added to every line number reported (inline diagrams, implied header)

    def line_text(self, line: int) -> str:
        lines = self.original.split("\n")
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    def error(
        self, message: str, line: int | None = None, column: int | None = None, hint: str | None = None
    ) -> DiagramError:
        """A DiagramError at a position of the cleaned text, with the offending line and a caret."""
        if line is None:
            return DiagramError(message, path=self.path, hint=hint)
        text = self.line_text(line).replace("\t", " ")
        shown_line = line + self.line_shift
        if column is not None and len(text) > 120:
            # Long lines: show a window around the column so the caret stays readable.
            start = max(0, column - 60)
            window = ("…" if start else "") + text[start : start + 110] + ("…" if start + 110 < len(text) else "")
            caret = column - start + (1 if start else 0)
            message = f"{message}\n    {window}\n    {' ' * (caret - 1)}^"
            return DiagramError(message, line=shown_line, column=column, path=self.path, hint=hint)
        return DiagramError(
            message,
            line=shown_line,
            column=column,
            source_line=text if column is not None else None,
            path=self.path,
            hint=hint,
        )


# ---- errors in words ---------------------------------------------------------------------------

_CARDINALITY_HINT = (
    "a relationship reads `LEFT ||--o{ RIGHT : label`: one of `|o o| || }o o{ }| |{` on each "
    "side of `--` (or `..`), or words such as `one to zero or more`"
)
_ATTRIBUTE_WORDS = {"ATTR_WORD", "ATTR_BACKTICK", "ATTR_GENERIC"}
_LINK_BEFORE = re.compile(r"\S\s*(?:--|\.\.|\.-|-\.)|\s(?:to|optionally\s+to)\s", re.I)


def _found(token) -> str:
    if token.type == "$END":
        return "the end of the diagram"
    if token.type == "_SEP":
        return "the end of the line" if token.startswith("\n") else "`;`"
    text = str(token)
    return f"`{text[:40]}{'…' if len(text) > 40 else ''}`"


def _end_position(clean: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character of ``clean``."""
    body = clean.rstrip()
    line = body.count("\n") + 1
    return line, len(body) - (body.rfind("\n") + 1) + 1


_CARD_BRACES = re.compile(r"(?<=[-.\s])[oO|]\{|\}[oO|](?=\s*(?:[-.]|to\b|optionally\b))", re.I)
_QUOTED = re.compile(r'"[^"\n]*"|`[^`\n]*`')


def _open_block(clean: str) -> tuple[int, str] | None:
    """(line, text of that line) of a `{` still open at the end of ``clean``.

    Quoted text and the braces of cardinalities (`o{`, `|{`, `}o`, `}|`) do not count.
    """
    masked = _CARD_BRACES.sub(lambda m: " " * len(m.group(0)), _QUOTED.sub(lambda m: " " * len(m.group(0)), clean))
    opened: int | None = None
    for index, char in enumerate(masked):
        if char == "{" and opened is None:
            opened = index
        elif char == "}":
            opened = None
    if opened is None:
        return None
    start = clean.rfind("\n", 0, opened) + 1
    end = clean.find("\n", opened)
    return clean.count("\n", 0, opened) + 1, clean[start : end if end >= 0 else len(clean)]


@dataclass
class _Failure:
    """Where the parser stopped, what it found there and what it expected instead."""

    expected: set[str]
    line: int
    column: int
    found_text: str  # the text at the error position ("" at the end)
    found: str  # the same, told in words
    token: Any = None  # the token the parser stopped at (None: a lexer error)


def _failure(error: Any, clean: str) -> _Failure:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = set(error.expected)
        line, column = _end_position(clean) if token.type == "$END" else (token.line, token.column)
        found_text = str(token) if token.type != "$END" else ""
        found = _found(token)
        if token.type not in expected and token.type in ("LABEL_TEXT", "ATTR_GENERIC"):
            # The lexer's fallback read a long run of text: point at its first character instead.
            found = f"the character `{found_text[0]}`"
        return _Failure(expected, line, column, found_text, found, token)
    if isinstance(error, UnexpectedCharacters):
        assert error.pos_in_stream is not None  # always set on UnexpectedCharacters
        found_text = clean[error.pos_in_stream :].split("\n", 1)[0]
        char = clean[error.pos_in_stream] if error.pos_in_stream < len(clean) else ""
        return _Failure(set(error.allowed or ()), error.line, error.column, found_text, f"the character `{char}`")
    # UnexpectedEOF (not raised by LALR, kept for safety)
    line, column = _end_position(clean)
    return _Failure(set(getattr(error, "expected", ()) or ()), line, column, "", "the end of the diagram")


def _explain(error: Any, source: Source, clean: str) -> DiagramError:
    """A Lark parse error, told in words: what was found, what was expected there, and a hint."""
    f = _failure(error, clean)
    line_text = source.line_text(f.line)
    explained = _header_error(f, source) or _comment_error(f, source) or _quote_error(f, source, line_text)
    if explained is not None:
        return explained
    opened = _open_block(clean[: _offset(clean, f.line, f.column)])
    explained = _open_block_error(f, source, opened)
    if explained is not None:
        return explained
    context = _context(f.expected)
    # Only the statement the error is in counts: the text after the last `;` before the column.
    segment = line_text[: f.column - 1].rfind(";") + 1
    if context == "after-entity" and "_COLON" in f.expected and _LINK_BEFORE.search(line_text[segment : f.column - 1]):
        # Right after an entity name the LALR tables merge both ends of a relationship; a link
        # earlier on the line means this is the second entity, which needs `: label` next.
        context = "before-label"
    if context == "after-entity" and f.found_text:
        explained = _after_entity_error(f, source, line_text, segment)
        if explained is not None:
            return explained
    what, hint = _EXPECTATIONS.get(context, (None, None))
    if what is None:
        what = _generic_expectation(f.expected)
    if context in ("in-block", "attribute-name", "after-attribute", "key") and opened:
        hint = (
            hint or ""
        ) + f" (the block opened on line {opened[0] + source.line_shift} is still open here: is a `}}` missing?)"
    return source.error(f"expected {what}, found {f.found}", f.line, f.column, hint=hint)


def _header_error(f: _Failure, source: Source) -> DiagramError | None:
    """A missing or wrong header."""
    if "HEADER" not in f.expected:
        return None
    word = (f.found_text.split() or [""])[0]
    if word.lower() == "erdiagram":
        return source.error(
            f"`{word}` must be written `erDiagram`",
            f.line,
            f.column,
            hint="the first statement must be `erDiagram` (mermaid reads it case-sensitively)",
        )
    if word.lower() in _OTHER_DIAGRAMS:
        return source.error(
            f"this is a mermaid `{word}`, not an `erDiagram`",
            f.line,
            f.column,
            hint="fountain reads entity-relationship diagrams: the first statement must be `erDiagram`",
        )
    return source.error(
        "the diagram does not start with `erDiagram`",
        f.line,
        f.column,
        hint="the first statement must be `erDiagram` (front matter, `%%{init}%%` "
        "directives and `%%` comments may come before it)",
    )


def _comment_error(f: _Failure, source: Source) -> DiagramError | None:
    """A stray `%%` after a statement: mermaid only knows whole-line comments."""
    if not f.found_text.startswith("%%"):
        return None
    return source.error(
        "a `%%` comment must be on a line of its own",
        f.line,
        f.column,
        hint="move the comment to its own line; it then becomes a note of the scene",
    )


def _quote_error(f: _Failure, source: Source, line_text: str) -> DiagramError | None:
    """Quotes: unterminated, empty, or holding a character names may not contain."""
    if not f.found_text.startswith('"'):
        return None
    rest = line_text[f.column :] if f.column - 1 < len(line_text) else ""
    if '"' not in rest:
        return source.error("this quote is never closed", f.line, f.column, hint='close it with `"` on the same line')
    if "QUOTED_NAME" not in f.expected:
        return None
    content = rest[: rest.index('"')]
    if not content:
        return source.error(
            "an entity name cannot be empty quotes",
            f.line,
            f.column,
            hint='write the name between the quotes, e.g. `"Delivery address"`',
        )
    bad = re.search(r"[%\\\x0b\x08]", content)
    if bad is None:
        return None
    shown = {"\x0b": "a vertical tab", "\x08": "a backspace"}.get(bad.group(0), f"`{bad.group(0)}`")
    return source.error(
        f"a quoted entity name cannot contain {shown}",
        f.line,
        f.column + 1 + bad.start(),
        hint="remove the character (mermaid rejects `%` and `\\` in names)",
    )


def _open_block_error(f: _Failure, source: Source, opened: tuple[int, str] | None) -> DiagramError | None:
    """A block left open: `accDescr {` without its `}`, or an attribute block at the end."""
    if opened and re.match(r"\s*accDescr\s*\{", opened[1], re.I):
        return source.error(
            "the `accDescr {` block is never closed",
            opened[0],
            opened[1].index("{") + 1,
            hint="end the description with `}`",
        )
    if f.token is not None and f.token.type == "$END" and ("_RBRACE" in f.expected or opened):
        where = f" opened on line {opened[0] + source.line_shift}" if opened else ""
        return source.error(
            f"the attribute block{where} is never closed", f.line, f.column, hint="end the block with `}`"
        )
    return None


def _after_entity_error(f: _Failure, source: Source, line_text: str, segment: int) -> DiagramError | None:
    """Right after an entity name: a character a bare name cannot hold, or an unknown cardinality."""
    column = f.column
    before = line_text[segment : column - 1]
    name_tail = re.search(r"\S*\Z", before)
    assert name_tail is not None  # \S*\Z matches every string
    name_start = segment + len(before) - len(name_tail.group(0))
    first = f.found_text[0]
    if name_start < column - 1 and first not in '|}{:["':
        # A character a bare name cannot hold, in the middle of a name (`Blo~rf`).
        name_rest = re.match(r"\S*", line_text[column - 1 :])
        assert name_rest is not None  # \S* matches every string
        name = line_text[name_start : column - 1] + name_rest.group(0)
        return source.error(
            f"`{first}` cannot appear in an unquoted entity name",
            f.line,
            column,
            hint=f'put the name in quotes: `"{name}"` (bare names hold letters, digits, '
            "`_`, `-`, `*`, `.` and non-ASCII characters)",
        )
    if first in ":|}{o-.<>=":
        # `A xxx B : label` or `A |x--o{ B`: the word after the first entity is no cardinality.
        match = re.compile(r'\s*("[^"]*"|[^\s"\[{:]+)(\[[^\]]*\])?(:::\S+)?\s+(\S+)').match(line_text, segment)
        if match and match.start(4) + 1 <= column:
            return source.error(
                f"unknown cardinality `{match.group(4)}`", f.line, match.start(4) + 1, hint=_CARDINALITY_HINT
            )
    return None


def _offset(clean: str, line: int, column: int) -> int:
    lines = clean.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def _context(expected: set[str]) -> str:
    if "LINK" in expected:
        return "after-left-cardinality"
    if "CARDINALITY" in expected and "NAME" in expected:
        return "after-entity"
    if "CARDINALITY" in expected:
        return "after-link"
    if "_COLON" in expected:
        return "before-label"
    if {"QUOTED_LABEL", "LABEL_TEXT"} & expected:
        return "label"
    if "_RSQB" in expected:
        return "alias-end"
    if {"NAME", "QUOTED_NAME"} & expected and "_SEP" not in expected:
        return "entity-name"
    if "CLASS_ID" in expected:
        return "class-name"
    if expected == {"KEY"}:
        return "key"
    if "KEY" in expected or "COMMENT" in expected:
        return "after-attribute"
    if "QMARK" in expected:
        return "attribute-name"
    if _ATTRIBUTE_WORDS & expected:
        return "in-block"
    return "other"


_EXPECTATIONS: dict[str, tuple[str, str | None]] = {
    "after-entity": ("a cardinality such as ||--o{, an attribute block `{`, or a new line", _CARDINALITY_HINT),
    "after-left-cardinality": (
        "`--` or `..` (or the words `to` / `optionally to`) after the first cardinality",
        _CARDINALITY_HINT,
    ),
    "after-link": ("a cardinality such as o{, |{, || or o| after the line", _CARDINALITY_HINT),
    "before-label": (
        "`:` and a label after the second entity",
        "every relationship needs a label, e.g. `CUSTOMER ||--o{ ORDER : places`; quote labels "
        'with spaces or symbols: `: "is part of"`',
    ),
    "label": ("a label after `:`", 'write a word or a quoted text, e.g. `: places` or `: "is part of"`'),
    "alias-end": ("`]` to close the alias", 'an alias reads `CUSTOMER["Customer"]` or `CUSTOMER[Customer]`'),
    "entity-name": ("the name of the second entity", "a name is a word (letters, digits, _ - * .) or a quoted text"),
    "class-name": ("a class name after `:::`", "e.g. `CUSTOMER:::important`"),
    "key": ("a key (PK, FK or UK) after `,`", "keys are written `PK`, `FK`, `UK`, separated by commas"),
    "after-attribute": (
        "a key (PK, FK, UK), a quoted comment, the next attribute or `}`",
        'an attribute reads `type name PK, FK "comment"`',
    ),
    "attribute-name": (
        "an attribute name after the type",
        "an attribute is `type name`: a name starts with a letter, `_` or `*` (or put it in backticks)",
    ),
    "in-block": (
        "an attribute (`type name`) or `}`",
        "an attribute is `type name`: a type or name starts with a letter, `_` or `*` (or put it in backticks)",
    ),
}

_TERMINAL_WORDS = [
    ("CARDINALITY", "a cardinality"),
    ("LINK", "`--` or `..`"),
    ("NAME", "an entity name"),
    ("QUOTED_NAME", "an entity name"),
    ("_COLON", "`:`"),
    ("LABEL_TEXT", "a label"),
    ("QUOTED_LABEL", "a label"),
    ("_LBRACE", "`{`"),
    ("_RBRACE", "`}`"),
    ("_RSQB", "`]`"),
    ("ATTR_WORD", "an attribute"),
    ("KEY", "a key"),
    ("COMMENT", "a comment"),
    ("_SEP", "a new line"),
    ("$END", "the end of the diagram"),
]


def _generic_expectation(expected: set[str]) -> str:
    words: list[str] = []
    for terminal, word in _TERMINAL_WORDS:
        if terminal in expected and word not in words:
            words.append(word)
    if not words:
        return "a statement"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
