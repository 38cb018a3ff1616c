"""Text -> :class:`~fountain.diagram.model.Diagram`: mermaid's clean-up (front matter, directives,
comments) with every line kept in place, the Lark LALR parse, and the building of the result."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fountain.diagram.builder import DiagramBuilder
from fountain.diagram.explain import Source, _explain
from fountain.diagram.model import (
    Attribute,
    Diagram,
)
from fountain.errors import DiagramError

# ---- parser ------------------------------------------------------------------------------------


def _cache_file() -> str | bool:
    """Where Lark keeps the grammar's analysis between processes: a file in the user's own cache
    folder (never a shared temporary folder: the cache is a pickle), named after fountain's
    version; Lark checks the grammar's hash inside it and rebuilds when it differs or is damaged.
    ``False`` (no cache) when there is no home folder to keep it in."""
    import os

    from fountain import __version__

    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache"))
    if not os.path.isabs(base):
        return False
    folder = os.path.join(base, "fountain")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.path.join(folder, f"mermaid_er-{__version__}.lark")


@lru_cache(maxsize=1)
def _parser():
    """The compiled LALR parser, built on first use and kept for the process; the grammar's
    analysis is cached on disk (about 0.1 s to build, 0.01 s to load)."""
    from lark import Lark

    from fountain.resources import read_grammar

    return Lark(
        read_grammar("mermaid_er.lark"),
        parser="lalr",
        lexer="contextual",
        transformer=_shaper(),
        maybe_placeholders=False,
        cache=_cache_file(),
    )


class _ShapeRules:
    """One method per grammar rule, turning it into plain tuples while parsing (mixed into a Lark
    ``Transformer`` by :func:`_shaper`, so that lark is imported only when a diagram is parsed)."""

    def start(self, items):
        from lark import Token

        return [item for item in items[1:] if not isinstance(item, Token)]

    def name(self, items):
        return items[0]

    def alias(self, items):
        return ("alias", items[0])

    def classes(self, items):
        return ("classes", [str(t) for t in items])

    def entity_ref(self, items):
        alias = next((i[1] for i in items[1:] if i[0] == "alias"), None)
        classes: list[str] = next((i[1] for i in items[1:] if i[0] == "classes"), [])
        return (items[0], alias, classes)

    def entity(self, items):
        return ("entity", items[0], items[1] if len(items) > 1 else None)

    def relationship(self, items):
        left, card_left, link, card_right, right, label = items
        return ("relationship", left, card_left, link, card_right, right, label)

    def label(self, items):
        return items[0]

    def block(self, items):
        return list(items)

    def attribute(self, items):
        from lark import Token

        type_, name = items[0], items[1]
        keys = next((i for i in items[2:] if isinstance(i, list)), [])
        comment = next((i for i in items[2:] if isinstance(i, Token)), None)
        return Attribute(
            type=type_,
            name=name,
            keys=tuple(keys),
            comment=(comment[1:-1] or None) if comment is not None else None,
        )

    def attr_type(self, items):
        return _attr_word(items[0]) + ("?" if len(items) > 1 else "")

    def attr_name(self, items):
        return _attr_word(items[0])

    def keys(self, items):
        return [str(t).upper() for t in items]

    def style(self, items):
        return ("style", items[0])

    def class_def(self, items):
        return ("class_def", items[0])

    def class_assign(self, items):
        return ("class", items[0])

    def acc_title(self, items):
        return ("acc_title", items[0])

    def acc_descr(self, items):
        return ("acc_descr", items[0])

    def direction(self, items):
        return ("direction", items[0])


@lru_cache(maxsize=1)
def _shaper():
    """A stateless Lark transformer that turns rules into plain tuples while parsing."""
    from lark import Transformer

    return type("Shape", (_ShapeRules, Transformer), {})()


def _attr_word(token) -> str:
    text = str(token)
    return text[1:-1] if token.type == "ATTR_BACKTICK" else text


# ---- preprocessing -----------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A((?:[ \t]*\n)*)---[ \t]*\n(.*?)(?:\n|\A)[ \t]*---[ \t]*(?=\n|\Z)", re.S)
_FRONT_MATTER_START = re.compile(r"\A(?:[ \t]*\n)*---[ \t]*(?:\n|\Z)")
_COMMENT_LINE = re.compile(r"^[ \t]*%%(?!\{)(.*)$", re.M)


def _blank(text: str) -> str:
    """``text`` with everything but its line breaks turned into spaces (positions are kept)."""
    return re.sub(r"[^\n]", " ", text)


def _blank_directives(text: str) -> str:
    """``text`` with every ``%%{ ... }%%`` directive blanked, in linear time (a ``.*?`` regex
    under re.S is quadratic on a text of unclosed ``%%{``: 600 KB took minutes)."""
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find("%%{", pos)
        if start < 0:
            break
        end = text.find("}%%", start + 3)
        if end < 0:
            break  # an unclosed directive: reported by the caller
        parts.append(text[pos:start])
        parts.append(_blank(text[start : end + 3]))
        pos = end + 3
    parts.append(text[pos:])
    return "".join(parts)


def _preprocess(text: str, path: str | None) -> Source:
    original = text.replace("\r\n", "\n").replace("\r", "\n")
    source = Source(original=original, clean=original, path=path)
    clean = original

    match = _FRONT_MATTER.match(clean)
    if match:
        source.title = _front_matter_title(source, match.group(2), first_line=match.group(1).count("\n") + 2)
        clean = _blank(match.group(0)) + clean[match.end() :]
    elif _FRONT_MATTER_START.match(clean):
        line = clean[: clean.index("---")].count("\n") + 1
        raise source.error(
            "the front matter is never closed",
            line,
            1,
            hint="end the front matter with a line `---` before `erDiagram`",
        )

    clean = _blank_directives(clean)
    leftover = re.search(r"^[ \t]*%%\{", clean, re.M)
    if leftover:
        line = clean[: leftover.start()].count("\n") + 1
        raise source.error(
            "the directive is never closed",
            line,
            leftover.group(0).index("%") + 1,
            hint="a directive reads `%%{init: {...}}%%` and ends with `}%%`",
        )

    def note(match: re.Match) -> str:
        text = match.group(1).strip()
        if text:
            source.notes.append(text)
        return ""

    source.clean = _COMMENT_LINE.sub(note, clean)
    return source


def _front_matter_title(source: Source, body: str, first_line: int) -> str | None:
    import yaml

    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        column = mark.column + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise source.error(
            f"the front matter is not valid YAML: {problem}",
            line,
            column,
            hint="front matter is YAML between two `---` lines, e.g. `title: My scene`",
        ) from None
    if isinstance(data, dict) and isinstance(data.get("title"), (str, int, float)):
        return str(data["title"]).strip() or None
    return None


# ---- building the Diagram ----------------------------------------------------------------------


def parse(text: str, *, path: str | None = None, require_header: bool = True, first_line: int = 1) -> Diagram:
    """Parse mermaid ``erDiagram`` text into a :class:`Diagram`.

    ``path`` names the source in error locations. ``require_header=False`` accepts a diagram body
    without the ``erDiagram`` line (as the original project's inline ``er_diagram`` allowed).
    ``first_line`` is the line of ``text``'s first line in ``path`` (for diagrams embedded in
    another file). Raises :class:`~fountain.errors.DiagramError` and nothing else.
    """
    try:
        return _parse(text, path=path, require_header=require_header, first_line=first_line)
    except DiagramError:
        raise
    except RecursionError:
        raise DiagramError(
            "the diagram is nested too deeply to parse", path=path, hint="split it into simpler statements"
        ) from None
    except Exception as error:  # never let anything else out: the caller only handles DiagramError
        raise DiagramError(
            f"could not parse the diagram ({type(error).__name__}: {error})",
            path=path,
            hint="this is a bug in fountain; please report it with the diagram",
        ) from error


def _parse(text: str, *, path: str | None, require_header: bool, first_line: int) -> Diagram:
    if not isinstance(text, str):
        raise DiagramError(f"the diagram must be text, not {type(text).__name__}", path=path)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DiagramError(
            "the diagram contains a NUL byte: it looks like a binary file",
            path=path,
            line=line + first_line - 1,
            hint="a diagram is a UTF-8 text file",
        )
    source = _preprocess(text, path)
    source.line_shift = first_line - 1
    if not source.clean.strip():
        raise source.error(
            "the diagram is empty",
            hint="start with a line `erDiagram`, then entities and "
            "relationships, e.g. `CUSTOMER ||--o{ ORDER : places`",
        )
    clean = source.clean
    if not require_header and not re.match(r"\s*erDiagram(?![\w\-*.]|[^\x00-\x7f])", clean):
        clean = "erDiagram\n" + clean
        source.original = "erDiagram\n" + source.original
        source.line_shift -= 1

    return _build(_statements(clean, source), source, text)


def _statements(clean: str, source: Source) -> list[Any]:
    """The parsed statements of ``clean``: from the parse cache when this text was parsed before
    (:mod:`fountain.diagram.parse_cache`), else from Lark (and then kept)."""
    from fountain.diagram import parse_cache
    from fountain.resources import read_grammar

    grammar, where = read_grammar("mermaid_er.lark"), _cache_file()
    statements = parse_cache.load(where, clean, grammar)
    if statements is not None:
        return statements
    from lark.exceptions import UnexpectedInput

    try:
        statements = _parser().parse(clean)
    except UnexpectedInput as error:
        raise _explain(error, source, clean) from None
    parse_cache.store(where, clean, grammar, statements)
    return statements


def _build(statements: list, source: Source, text: str) -> Diagram:
    builder = DiagramBuilder(source)
    for statement in statements:
        builder.add(statement)
    return builder.diagram(text)
