"""The scene diagram: a mermaid ``erDiagram`` parsed into a :class:`Diagram`.

Public entry points: :func:`parse` (text -> Diagram), :func:`load_diagram` (a ``.mermaid`` file or a
spec folder -> Diagram) and :func:`rich_tree` (a Diagram as a rich Tree for the CLI).

The grammar lives in ``grammars/mermaid_er.lark`` (package data) and is compiled once, lazily, into
an LALR(1) parser with Lark's contextual lexer: linear time, and the contextual lexer is what tells
the cardinality ``one`` from an entity called ``one``. Before parsing, the text goes through the
same clean-up mermaid applies (line endings, front matter, ``%%{init}%%`` directives, whole-line
``%%`` comments), with every line kept in place so that errors point at the right line and column.
Every failure, whatever its cause, leaves :func:`parse` as a :class:`~fountain.errors.DiagramError`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fountain.errors import DiagramError

ONLY_ONE = "ONLY_ONE"
ZERO_OR_ONE = "ZERO_OR_ONE"
ZERO_OR_MORE = "ZERO_OR_MORE"
ONE_OR_MORE = "ONE_OR_MORE"
MD_PARENT = "MD_PARENT"

#: How each cardinality reads in a sentence ("exactly one CUSTOMER to zero or more ORDER").
CARDINALITY_WORDS = {
    ONLY_ONE: "exactly one",
    ZERO_OR_ONE: "zero or one",
    ZERO_OR_MORE: "zero or more",
    ONE_OR_MORE: "one or more",
    MD_PARENT: "a parent",
}

# Every spelling the grammar's CARDINALITY terminal accepts, lower-cased with single spaces.
_CARDINALITY = {
    "|o": ZERO_OR_ONE, "o|": ZERO_OR_ONE, "one or zero": ZERO_OR_ONE, "zero or one": ZERO_OR_ONE,
    "}o": ZERO_OR_MORE, "o{": ZERO_OR_MORE, "zero or more": ZERO_OR_MORE, "zero or many": ZERO_OR_MORE,
    "0+": ZERO_OR_MORE, "many(0)": ZERO_OR_MORE, "many": ZERO_OR_MORE,
    "}|": ONE_OR_MORE, "|{": ONE_OR_MORE, "one or more": ONE_OR_MORE, "one or many": ONE_OR_MORE,
    "1+": ONE_OR_MORE, "many(1)": ONE_OR_MORE,
    "||": ONLY_ONE, "one": ONLY_ONE, "only one": ONLY_ONE, "1": ONLY_ONE,
    "u": MD_PARENT,
}
_IDENTIFYING_LINKS = {"--", "to"}
DIRECTIONS = ("TB", "BT", "LR", "RL")

# The first word of the other mermaid diagram types, to say "this is a flowchart" instead of
# "missing header".
_OTHER_DIAGRAMS = {
    "graph", "flowchart", "flowchart-elk", "sequencediagram", "classdiagram", "classdiagram-v2",
    "statediagram", "statediagram-v2", "gantt", "pie", "journey", "gitgraph", "mindmap", "timeline",
    "quadrantchart", "requirementdiagram", "c4context", "c4container", "c4component", "c4dynamic",
    "c4deployment", "sankey-beta", "xychart-beta", "block-beta", "packet-beta", "architecture-beta",
    "kanban", "radar-beta", "zenuml", "treemap-beta",
}


# ---- result types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One row of an entity's attribute block: ``type name [PK, FK] ["comment"]``."""

    type: str
    name: str
    keys: tuple[str, ...] = ()
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "keys": list(self.keys) or None,
                "comment": self.comment}


@dataclass(frozen=True)
class Entity:
    """An entity with everything the diagram says about it."""

    name: str
    alias: str | None = None
    attributes: tuple[Attribute, ...] = ()
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relationship:
    """``left <left_cardinality><link><right_cardinality> right : label``.

    ``right_cardinality`` says how many ``right`` each ``left`` has (``A ||--o{ B``: zero or more B),
    ``left_cardinality`` how many ``left`` each ``right`` has. ``line`` is 1-based in the source.
    """

    left: str
    right: str
    left_cardinality: str
    right_cardinality: str
    identifying: bool
    label: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"left": self.left, "right": self.right, "left_cardinality": self.left_cardinality,
                "right_cardinality": self.right_cardinality, "identifying": self.identifying,
                "label": self.label}

    def sentence(self) -> str:
        """Plain words: ``CUSTOMER places ORDER (exactly one CUSTOMER to zero or more ORDER)``."""
        verb = self.label or "is related to"
        text = (f"{self.left} {verb} {self.right} ({CARDINALITY_WORDS[self.left_cardinality]} "
                f"{self.left} to {CARDINALITY_WORDS[self.right_cardinality]} {self.right}")
        return text + ("" if self.identifying else "; non-identifying") + ")"


class Diagram:
    """A parsed erDiagram.

    ``entities`` (names in order of first appearance), ``relationships`` and ``notes`` (the text of
    the ``%%`` comment lines, in order) are the parsed records; ``graph`` is the same content as a
    ``networkx.MultiDiGraph`` (one node per entity with ``alias``, ``attributes`` and ``classes``,
    one edge left -> right per relationship), built on first use.
    """

    def __init__(self, *, text: str, entities: dict[str, Entity], relationships: list[Relationship],
                 notes: list[str], title: str | None = None, acc_title: str | None = None,
                 acc_descr: str | None = None, direction: str | None = None,
                 styles: dict[str, tuple[str, ...]] | None = None,
                 class_defs: dict[str, tuple[str, ...]] | None = None, path: str | None = None):
        self.text = text
        self.path = path
        self._entities = entities
        self.entities: list[str] = list(entities)
        self.relationships: list[Relationship] = relationships
        self.notes: list[str] = notes
        self.title = title
        self.acc_title = acc_title
        self.acc_descr = acc_descr
        self.direction = direction
        self.styles: dict[str, tuple[str, ...]] = styles or {}
        self.class_defs: dict[str, tuple[str, ...]] = class_defs or {}
        self._graph = None

    def __repr__(self) -> str:
        counts = self.summary()
        return (f"Diagram({counts['entities']} entities, {counts['relationships']} relationships, "
                f"{counts['notes']} notes)")

    def __contains__(self, name: object) -> bool:
        return name in self._entities

    def entity(self, name: str) -> Entity:
        """The entity called ``name`` (KeyError when the diagram has none)."""
        return self._entities[name]

    @property
    def graph(self):
        """The diagram as a ``networkx.MultiDiGraph`` (built once, on first access)."""
        if self._graph is None:
            import networkx as nx  # ~0.1 s to import: only when someone asks for the graph

            graph = nx.MultiDiGraph(title=self.title, acc_title=self.acc_title,
                                    acc_descr=self.acc_descr, direction=self.direction,
                                    notes=list(self.notes))
            for entity in self._entities.values():
                graph.add_node(entity.name, alias=entity.alias,
                               attributes=[a.to_dict() for a in entity.attributes],
                               classes=list(entity.classes))
            for index, rel in enumerate(self.relationships):
                graph.add_edge(rel.left, rel.right, index=index,
                               left_cardinality=rel.left_cardinality,
                               right_cardinality=rel.right_cardinality,
                               identifying=rel.identifying, label=rel.label)
            self._graph = graph
        return self._graph

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``conformance/mermaid_er/README.md``: entities, relationships, notes."""
        return {
            "entities": {e.name: {"alias": e.alias, "attributes": [a.to_dict() for a in e.attributes]}
                         for e in self._entities.values()},
            "relationships": [r.to_dict() for r in self.relationships],
            "notes": list(self.notes),
        }

    def summary(self) -> dict[str, int]:
        """Counts: entities, relationships, attributes, notes."""
        return {"entities": len(self._entities), "relationships": len(self.relationships),
                "attributes": sum(len(e.attributes) for e in self._entities.values()),
                "notes": len(self.notes)}

    def describe(self) -> str:
        """A compact plain-text account of the scene, meant to go into a prompt."""
        lines: list[str] = []
        if self.title:
            lines.append(f"Title: {self.title}")
        elif self.acc_title:
            lines.append(f"Title: {self.acc_title}")
        if self.acc_descr:
            lines.append(f"Description: {' '.join(self.acc_descr.split())}")
        lines.append("Entities:")
        for entity in self._entities.values():
            text = f"- {entity.name}"
            if entity.alias:
                text += f' ("{entity.alias}")'
            if entity.attributes:
                text += ": " + "; ".join(_describe_attribute(a) for a in entity.attributes)
            lines.append(text)
        if self.relationships:
            lines.append("Relationships:")
            lines.extend(f"- {r.sentence()}" for r in self.relationships)
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)


def _describe_attribute(attribute: Attribute) -> str:
    details = [attribute.type, *attribute.keys]
    if attribute.comment:
        details.append(f'"{attribute.comment}"')
    return f"{attribute.name} ({', '.join(details)})"


# ---- parser ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser():
    """The compiled LALR parser, built on first use (about 0.1 s) and kept for the process."""
    from lark import Lark

    from fountain.resources import read_grammar

    return Lark(read_grammar("mermaid_er.lark"), parser="lalr", lexer="contextual",
                transformer=_shaper(), maybe_placeholders=False)


@lru_cache(maxsize=1)
def _shaper():
    """A stateless Lark transformer that turns rules into plain tuples while parsing."""
    from lark import Token, Transformer

    class Shape(Transformer):
        def start(self, items):
            return [item for item in items[1:] if not isinstance(item, Token)]

        def name(self, items):
            return items[0]

        def alias(self, items):
            return ("alias", items[0])

        def classes(self, items):
            return ("classes", [str(t) for t in items])

        def entity_ref(self, items):
            alias = next((i[1] for i in items[1:] if i[0] == "alias"), None)
            classes = next((i[1] for i in items[1:] if i[0] == "classes"), [])
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
            type_, name = items[0], items[1]
            keys = next((i for i in items[2:] if isinstance(i, list)), [])
            comment = next((i for i in items[2:] if isinstance(i, Token)), None)
            return Attribute(type=type_, name=name, keys=tuple(keys),
                             comment=(comment[1:-1] or None) if comment is not None else None)

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

    return Shape()


def _attr_word(token) -> str:
    text = str(token)
    return text[1:-1] if token.type == "ATTR_BACKTICK" else text


# ---- preprocessing -----------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A((?:[ \t]*\n)*)---[ \t]*\n(.*?)(?:\n|\A)[ \t]*---[ \t]*(?=\n|\Z)", re.S)
_FRONT_MATTER_START = re.compile(r"\A(?:[ \t]*\n)*---[ \t]*(?:\n|\Z)")
_DIRECTIVE = re.compile(r"%%\{.*?\}%%", re.S)
_COMMENT_LINE = re.compile(r"^[ \t]*%%(?!\{)(.*)$", re.M)


@dataclass
class _Source:
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

    def error(self, message: str, line: int | None = None, column: int | None = None,
              hint: str | None = None) -> DiagramError:
        """A DiagramError at a position of the cleaned text, with the offending line and a caret."""
        if line is None:
            return DiagramError(message, path=self.path, hint=hint)
        text = self.line_text(line).replace("\t", " ")
        shown_line = line + self.line_shift
        if column is not None and len(text) > 120:
            # Long lines: show a window around the column so the caret stays readable.
            start = max(0, column - 60)
            window = ("…" if start else "") + text[start:start + 110] + ("…" if start + 110 < len(text) else "")
            caret = column - start + (1 if start else 0)
            message = f"{message}\n    {window}\n    {' ' * (caret - 1)}^"
            return DiagramError(message, line=shown_line, column=column, path=self.path, hint=hint)
        return DiagramError(message, line=shown_line, column=column,
                            source_line=text if column is not None else None, path=self.path, hint=hint)


def _blank(text: str) -> str:
    """``text`` with everything but its line breaks turned into spaces (positions are kept)."""
    return re.sub(r"[^\n]", " ", text)


def _preprocess(text: str, path: str | None) -> _Source:
    original = text.replace("\r\n", "\n").replace("\r", "\n")
    source = _Source(original=original, clean=original, path=path)
    clean = original

    match = _FRONT_MATTER.match(clean)
    if match:
        source.title = _front_matter_title(source, match.group(2), first_line=match.group(1).count("\n") + 2)
        clean = _blank(match.group(0)) + clean[match.end():]
    elif _FRONT_MATTER_START.match(clean):
        line = clean[:clean.index("---")].count("\n") + 1
        raise source.error("the front matter is never closed", line, 1,
                           hint="end the front matter with a line `---` before `erDiagram`")

    clean = _DIRECTIVE.sub(lambda m: _blank(m.group(0)), clean)
    leftover = re.search(r"^[ \t]*%%\{", clean, re.M)
    if leftover:
        line = clean[:leftover.start()].count("\n") + 1
        raise source.error("the directive is never closed", line, leftover.group(0).index("%") + 1,
                           hint="a directive reads `%%{init: {...}}%%` and ends with `}%%`")

    def note(match: re.Match) -> str:
        text = match.group(1).strip()
        if text:
            source.notes.append(text)
        return ""

    source.clean = _COMMENT_LINE.sub(note, clean)
    return source


def _front_matter_title(source: _Source, body: str, first_line: int) -> str | None:
    import yaml

    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        column = mark.column + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise source.error(f"the front matter is not valid YAML: {problem}", line, column,
                           hint="front matter is YAML between two `---` lines, e.g. `title: My scene`") from None
    if isinstance(data, dict) and isinstance(data.get("title"), (str, int, float)):
        return str(data["title"]).strip() or None
    return None


# ---- building the Diagram ----------------------------------------------------------------------


def parse(text: str, *, path: str | None = None, require_header: bool = True,
          first_line: int = 1) -> Diagram:
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
        raise DiagramError("the diagram is nested too deeply to parse", path=path,
                           hint="split it into simpler statements") from None
    except Exception as error:  # never let anything else out: the caller only handles DiagramError
        raise DiagramError(f"could not parse the diagram ({type(error).__name__}: {error})", path=path,
                           hint="this is a bug in fountain; please report it with the diagram") from error


def _parse(text: str, *, path: str | None, require_header: bool, first_line: int) -> Diagram:
    if not isinstance(text, str):
        raise DiagramError(f"the diagram must be text, not {type(text).__name__}", path=path)
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise DiagramError("the diagram contains a NUL byte: it looks like a binary file", path=path,
                           line=line + first_line - 1, hint="a diagram is a UTF-8 text file")
    source = _preprocess(text, path)
    source.line_shift = first_line - 1
    if not source.clean.strip():
        raise source.error("the diagram is empty", hint="start with a line `erDiagram`, then entities and "
                           "relationships, e.g. `CUSTOMER ||--o{ ORDER : places`")
    clean = source.clean
    if not require_header and not re.match(r"\s*erDiagram(?![\w\-*.]|[^\x00-\x7f])", clean):
        clean = "erDiagram\n" + clean
        source.original = "erDiagram\n" + source.original
        source.line_shift -= 1

    from lark.exceptions import UnexpectedInput

    try:
        statements = _parser().parse(clean)
    except UnexpectedInput as error:
        raise _explain(error, source, clean) from None
    return _build(statements, source, text)


def _name(token) -> str:
    return token[1:-1] if token.type == "QUOTED_NAME" else str(token)


def _build(statements: list, source: _Source, text: str) -> Diagram:
    entities: dict[str, dict[str, Any]] = {}
    relationships: list[Relationship] = []
    styles: dict[str, list[str]] = {}
    class_defs: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    meta: dict[str, str | None] = {"acc_title": None, "acc_descr": None, "direction": None}

    def add_entity(token, alias=None, class_names=()) -> str:
        if token.type == "NAME" and token.lower() == "erdiagram":
            raise source.error("`erDiagram` appears a second time", token.line, token.column,
                               hint="a file holds one diagram: remove the extra `erDiagram` line")
        name = _name(token)
        record = entities.setdefault(name, {"alias": None, "attributes": []})
        if alias is not None and record["alias"] is None:  # mermaid keeps the first alias
            record["alias"] = _name(alias)
        for class_name in class_names:
            _append_unique(classes.setdefault(name, []), class_name)
        return name

    for statement in statements:
        kind = statement[0]
        if kind == "entity":
            (token, alias, class_names), block = statement[1], statement[2]
            name = add_entity(token, alias, class_names)
            if block:
                entities[name]["attributes"].extend(block)
        elif kind == "relationship":
            _, left, card_left, link, card_right, right, label = statement
            left_name = add_entity(*left)
            right_name = add_entity(*right)
            relationships.append(Relationship(
                left=left_name, right=right_name,
                left_cardinality=_CARDINALITY[" ".join(card_left.lower().split())],
                right_cardinality=_CARDINALITY[" ".join(card_right.lower().split())],
                identifying=" ".join(link.lower().split()) in _IDENTIFYING_LINKS,
                label=label[1:-1] if label.type == "QUOTED_LABEL" else label.strip(),
                line=left[0].line + source.line_shift))
        elif kind == "style":
            ids, rest = _ids_and_rest(_argument(statement[1]))
            for entity_id in ids:
                styles.setdefault(entity_id, []).extend(_comma_list(rest))
        elif kind == "class_def":
            ids, rest = _ids_and_rest(_argument(statement[1]))
            for class_name in ids:
                class_defs[class_name] = _comma_list(rest)
        elif kind == "class":
            ids, rest = _ids_and_rest(_argument(statement[1]))
            for entity_id in ids:
                for class_name in _comma_list(rest):
                    _append_unique(classes.setdefault(entity_id, []), class_name)
        elif kind == "acc_title":
            meta["acc_title"] = statement[1].split(":", 1)[1].strip() or None
        elif kind == "acc_descr":
            token = statement[1]
            if token.type == "ACC_DESCR":
                meta["acc_descr"] = token.split(":", 1)[1].strip() or None
            else:  # accDescr { ... }: mermaid trims and drops each line's indentation
                body = token[token.index("{") + 1:-1].strip()
                meta["acc_descr"] = re.sub(r"\n\s+", "\n", body) or None
        elif kind == "direction":
            token = statement[1]
            value = _argument(token).split()[0].upper()
            if value not in DIRECTIONS:
                column = token.column + token.index(_argument(token).split()[0])
                hint = "use TB, BT, LR or RL" + (" (TD is the flowchart spelling of TB)" if value == "TD" else "")
                raise source.error(f"unknown direction `{_argument(token).split()[0]}`", token.line, column,
                                   hint=hint)
            meta["direction"] = value

    built = {name: Entity(name=name, alias=record["alias"], attributes=tuple(record["attributes"]),
                          classes=tuple(classes.get(name, ())))
             for name, record in entities.items()}
    return Diagram(text=text, entities=built, relationships=relationships, notes=source.notes,
                   title=source.title, acc_title=meta["acc_title"], acc_descr=meta["acc_descr"],
                   direction=meta["direction"], styles={k: tuple(v) for k, v in styles.items()},
                   class_defs={k: tuple(v) for k, v in class_defs.items()}, path=source.path)


def _append_unique(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _argument(token) -> str:
    """What follows the keyword of a ``style``/``classDef``/``class``/``direction`` statement."""
    return token.split(None, 1)[1].strip() if len(token.split(None, 1)) > 1 else ""


def _ids_and_rest(argument: str) -> tuple[list[str], str]:
    """``A, B fill:#f9f,stroke:red`` -> (["A", "B"], "fill:#f9f,stroke:red")."""
    match = re.match(r"\s*([^\s,]+(?:\s*,\s*[^\s,]+)*)\s*(.*)\Z", argument, re.S)
    if not match:
        return [], ""
    return [part.strip() for part in match.group(1).split(",")], match.group(2)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# ---- errors in words ---------------------------------------------------------------------------

_CARDINALITY_HINT = ("a relationship reads `LEFT ||--o{ RIGHT : label`: one of `|o o| || }o o{ }| |{` on each "
                     "side of `--` (or `..`), or words such as `one to zero or more`")
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
    return clean.count("\n", 0, opened) + 1, clean[start:end if end >= 0 else len(clean)]


def _explain(error, source: _Source, clean: str) -> DiagramError:
    """A Lark parse error, told in words: what was found, what was expected there, and a hint."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = set(error.expected)
        if token.type == "$END":
            line, column = _end_position(clean)
        else:
            line, column = token.line, token.column
        found_text = str(token) if token.type != "$END" else ""
        found = _found(token)
        if token.type not in expected and token.type in ("LABEL_TEXT", "ATTR_GENERIC"):
            # The lexer's fallback read a long run of text: point at its first character instead.
            found = f"the character `{found_text[0]}`"
    elif isinstance(error, UnexpectedCharacters):
        expected = set(error.allowed or ())
        line, column = error.line, error.column
        found_text = clean[error.pos_in_stream:].split("\n", 1)[0]
        char = clean[error.pos_in_stream] if error.pos_in_stream < len(clean) else ""
        found = f"the character `{char}`"
        token = None
    else:  # UnexpectedEOF (not raised by LALR, kept for safety)
        expected = set(getattr(error, "expected", ()) or ())
        line, column = _end_position(clean)
        found_text, found, token = "", "the end of the diagram", None
    line_text = source.line_text(line)

    # Missing or wrong header.
    if "HEADER" in expected:
        word = (found_text.split() or [""])[0]
        if word.lower() == "erdiagram":
            return source.error(f"`{word}` must be written `erDiagram`", line, column,
                                hint="the first statement must be `erDiagram` (mermaid reads it case-sensitively)")
        if word.lower() in _OTHER_DIAGRAMS:
            return source.error(f"this is a mermaid `{word}`, not an `erDiagram`", line, column,
                                hint="fountain reads entity-relationship diagrams: the first statement must be "
                                     "`erDiagram`")
        return source.error("the diagram does not start with `erDiagram`", line, column,
                            hint="the first statement must be `erDiagram` (front matter, `%%{init}%%` "
                                 "directives and `%%` comments may come before it)")

    # A stray `%%` after a statement: mermaid only knows whole-line comments.
    if found_text.startswith("%%"):
        return source.error("a `%%` comment must be on a line of its own", line, column,
                            hint="move the comment to its own line; it then becomes a note of the scene")

    # Quotes: unterminated, empty, or holding a character names may not contain.
    if found_text.startswith('"'):
        rest = line_text[column:] if column - 1 < len(line_text) else ""
        if '"' not in rest:
            return source.error("this quote is never closed", line, column,
                                hint='close it with `"` on the same line')
        if {"QUOTED_NAME"} & expected:
            content = rest[:rest.index('"')]
            if not content:
                return source.error("an entity name cannot be empty quotes", line, column,
                                    hint='write the name between the quotes, e.g. `"Delivery address"`')
            bad = re.search(r'[%\\\x0b\x08]', content)
            if bad:
                shown = {"\x0b": "a vertical tab", "\x08": "a backspace"}.get(bad.group(0), f"`{bad.group(0)}`")
                return source.error(f"a quoted entity name cannot contain {shown}", line,
                                    column + 1 + bad.start(),
                                    hint="remove the character (mermaid rejects `%` and `\\` in names)")

    # A block left open: `accDescr {` without its `}`, or an attribute block at the end.
    opened = _open_block(clean[:_offset(clean, line, column)])
    if opened and re.match(r"\s*accDescr\s*\{", opened[1], re.I):
        return source.error("the `accDescr {` block is never closed", opened[0], opened[1].index("{") + 1,
                            hint="end the description with `}`")
    if token is not None and token.type == "$END" and ("_RBRACE" in expected or opened):
        where = f" opened on line {opened[0] + source.line_shift}" if opened else ""
        return source.error(f"the attribute block{where} is never closed", line, column,
                            hint="end the block with `}`")

    context = _context(expected)
    # Only the statement the error is in counts: the text after the last `;` before the column.
    segment = line_text[:column - 1].rfind(";") + 1
    if context == "after-entity" and "_COLON" in expected and _LINK_BEFORE.search(line_text[segment:column - 1]):
        # Right after an entity name the LALR tables merge both ends of a relationship; a link
        # earlier on the line means this is the second entity, which needs `: label` next.
        context = "before-label"
    if context == "after-entity" and found_text:
        before = line_text[segment:column - 1]
        name_start = segment + len(before) - len(re.search(r"\S*\Z", before).group(0))
        if name_start < column - 1 and found_text[0] not in "|}{:[\"":
            # A character a bare name cannot hold, in the middle of a name (`Blo~rf`).
            name = line_text[name_start:column - 1] + re.match(r"\S*", line_text[column - 1:]).group(0)
            return source.error(f"`{found_text[0]}` cannot appear in an unquoted entity name", line, column,
                                hint=f'put the name in quotes: `"{name}"` (bare names hold letters, digits, '
                                     "`_`, `-`, `*`, `.` and non-ASCII characters)")
        if found_text[0] in ":|}{o-.<>=":
            # `A xxx B : label` or `A |x--o{ B`: the word after the first entity is no cardinality.
            match = re.compile(r'\s*("[^"]*"|[^\s"\[{:]+)(\[[^\]]*\])?(:::\S+)?\s+(\S+)').match(line_text, segment)
            if match and match.start(4) + 1 <= column:
                return source.error(f"unknown cardinality `{match.group(4)}`", line, match.start(4) + 1,
                                    hint=_CARDINALITY_HINT)
    what, hint = _EXPECTATIONS.get(context, (None, None))
    if what is None:
        what = _generic_expectation(expected)
    if context in ("in-block", "attribute-name", "after-attribute", "key") and opened:
        hint = (hint or "") + f" (the block opened on line {opened[0] + source.line_shift} is still open here: " \
                              "is a `}` missing?)"
    return source.error(f"expected {what}, found {found}", line, column, hint=hint)


def _offset(clean: str, line: int, column: int) -> int:
    lines = clean.split("\n")
    return sum(len(text) + 1 for text in lines[:line - 1]) + column - 1


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
    "after-left-cardinality": ("`--` or `..` (or the words `to` / `optionally to`) after the first cardinality",
                               _CARDINALITY_HINT),
    "after-link": ("a cardinality such as o{, |{, || or o| after the line", _CARDINALITY_HINT),
    "before-label": ("`:` and a label after the second entity",
                     'every relationship needs a label, e.g. `CUSTOMER ||--o{ ORDER : places`; quote labels '
                     'with spaces or symbols: `: "is part of"`'),
    "label": ("a label after `:`", 'write a word or a quoted text, e.g. `: places` or `: "is part of"`'),
    "alias-end": ("`]` to close the alias", 'an alias reads `CUSTOMER["Customer"]` or `CUSTOMER[Customer]`'),
    "entity-name": ("the name of the second entity", "a name is a word (letters, digits, _ - * .) or a quoted text"),
    "class-name": ("a class name after `:::`", "e.g. `CUSTOMER:::important`"),
    "key": ("a key (PK, FK or UK) after `,`", "keys are written `PK`, `FK`, `UK`, separated by commas"),
    "after-attribute": ("a key (PK, FK, UK), a quoted comment, the next attribute or `}`",
                        'an attribute reads `type name PK, FK "comment"`'),
    "attribute-name": ("an attribute name after the type",
                       "an attribute is `type name`: a name starts with a letter, `_` or `*` "
                       "(or put it in backticks)"),
    "in-block": ("an attribute (`type name`) or `}`",
                 "an attribute is `type name`: a type or name starts with a letter, `_` or `*` "
                 "(or put it in backticks)"),
}

_TERMINAL_WORDS = [
    ("CARDINALITY", "a cardinality"), ("LINK", "`--` or `..`"), ("NAME", "an entity name"),
    ("QUOTED_NAME", "an entity name"), ("_COLON", "`:`"), ("LABEL_TEXT", "a label"), ("QUOTED_LABEL", "a label"),
    ("_LBRACE", "`{`"), ("_RBRACE", "`}`"), ("_RSQB", "`]`"), ("ATTR_WORD", "an attribute"),
    ("KEY", "a key"), ("COMMENT", "a comment"), ("_SEP", "a new line"), ("$END", "the end of the diagram"),
]


def _generic_expectation(expected: set[str]) -> str:
    words: list[str] = []
    for terminal, word in _TERMINAL_WORDS:
        if terminal in expected and word not in words:
            words.append(word)
    if not words:
        return "a statement"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


# ---- files and presentation --------------------------------------------------------------------


def load_diagram(path: str | Path) -> Diagram:
    """Read and parse a ``.mermaid`` file, or the diagram of a spec folder.

    For a folder, the diagram is the one its ``setup.yaml`` names (inline ``er_diagram``, then
    ``er_diagram_path``), else ``diagram.mermaid`` beside it. Every problem is a DiagramError.
    """
    path = Path(path)
    if not path.is_dir():
        return parse(_read_text(path), path=str(path))
    setup = path / "setup.yaml"
    inline, inline_line, named = _diagram_keys(setup) if setup.is_file() else (None, 1, None)
    if inline is not None:
        return parse(inline, path=str(setup), require_header=False, first_line=inline_line)
    if named is not None:
        target = path / named
        return parse(_read_text(target), path=str(target))
    candidate = path / "diagram.mermaid"
    if candidate.is_file():
        return parse(_read_text(candidate), path=str(candidate))
    raise DiagramError("this folder has no diagram.mermaid and no setup.yaml that names a diagram",
                       path=str(path), hint="give a .mermaid file, or a spec folder with diagram.mermaid "
                                            "(or `er_diagram` / `er_diagram_path` in setup.yaml)")


def _diagram_keys(setup: Path) -> tuple[str | None, int, str | None]:
    """(inline er_diagram, its first line in setup.yaml, er_diagram_path) from a spec's setup.yaml.

    A setup.yaml that cannot be read as YAML names nothing here: ``fountain validate`` reports it.
    """
    import yaml

    try:
        root = yaml.compose(_read_text(setup))
    except (yaml.YAMLError, DiagramError):
        return None, 1, None
    inline, line, named = None, 1, None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:str":
                continue
            if key.value == "er_diagram":
                inline = value.value
                # A block scalar (`|`, `>`) starts on the line after its indicator.
                line = value.start_mark.line + (2 if value.style in ("|", ">") else 1)
            elif key.value == "er_diagram_path":
                named = value.value
    return inline, line, named


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DiagramError("no such file or folder", path=str(path),
                           hint="give a .mermaid file or a spec folder that holds diagram.mermaid")
    if path.is_dir():
        raise DiagramError("this is a folder, not a diagram file", path=str(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DiagramError(f"cannot read the diagram: {error.strerror or error}", path=str(path)) from None
    if b"\x00" in data[:8192]:
        raise DiagramError("this is a binary file, not a mermaid diagram", path=str(path),
                           hint="a diagram is a UTF-8 text file that starts with `erDiagram`")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DiagramError("the diagram is not valid UTF-8 text", path=str(path), line=line,
                           hint="save the file as UTF-8") from None


def rich_tree(diagram: Diagram, label: str | None = None):
    """The diagram as a ``rich.tree.Tree``: entities with attributes, relationships in words, notes."""
    from rich.markup import escape
    from rich.tree import Tree

    title = diagram.title or diagram.acc_title
    tree = Tree(f"[bold]{escape(label or diagram.path or 'erDiagram')}[/]"
                + (f"  [dim]{escape(title)}[/]" if title else ""))
    entities = tree.add(f"[bold]entities[/] ({len(diagram.entities)})")
    for name in diagram.entities:
        entity = diagram.entity(name)
        text = f"[cyan]{escape(name)}[/]"
        if entity.alias:
            text += f' [dim]"{escape(entity.alias)}"[/]'
        if entity.classes:
            text += f" [dim]:::{escape(','.join(entity.classes))}[/]"
        node = entities.add(text)
        for attribute in entity.attributes:
            row = f"{escape(attribute.name)} [dim]{escape(attribute.type)}[/]"
            if attribute.keys:
                row += f" [yellow]{escape(', '.join(attribute.keys))}[/]"
            if attribute.comment:
                row += f' [dim]"{escape(attribute.comment)}"[/]'
            node.add(row)
    relationships = tree.add(f"[bold]relationships[/] ({len(diagram.relationships)})")
    for rel in diagram.relationships:
        node = relationships.add(
            f"[cyan]{escape(rel.left)}[/] {escape(rel.label or 'is related to')} [cyan]{escape(rel.right)}[/]")
        node.add(f"[dim]{CARDINALITY_WORDS[rel.left_cardinality]} {escape(rel.left)} to "
                 f"{CARDINALITY_WORDS[rel.right_cardinality]} {escape(rel.right)}"
                 f"{'' if rel.identifying else ', non-identifying'}[/]")
    if diagram.notes:
        notes = tree.add(f"[bold]notes[/] ({len(diagram.notes)})")
        for note in diagram.notes:
            notes.add(escape(note))
    return tree
