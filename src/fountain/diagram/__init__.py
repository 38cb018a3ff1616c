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

from fountain.diagram.files import load_diagram, rich_tree
from fountain.diagram.model import (
    CARDINALITY_WORDS,
    DIRECTIONS,
    MD_PARENT,
    ONE_OR_MORE,
    ONLY_ONE,
    ZERO_OR_MORE,
    ZERO_OR_ONE,
    Attribute,
    Diagram,
    Entity,
    Relationship,
)
from fountain.diagram.parser import parse

__all__ = [
    "CARDINALITY_WORDS",
    "DIRECTIONS",
    "MD_PARENT",
    "ONE_OR_MORE",
    "ONLY_ONE",
    "ZERO_OR_MORE",
    "ZERO_OR_ONE",
    "Attribute",
    "Diagram",
    "Entity",
    "Relationship",
    "load_diagram",
    "parse",
    "rich_tree",
]
