"""The parsed diagram: attributes, entities, relationships and the :class:`Diagram` itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    "|o": ZERO_OR_ONE,
    "o|": ZERO_OR_ONE,
    "one or zero": ZERO_OR_ONE,
    "zero or one": ZERO_OR_ONE,
    "}o": ZERO_OR_MORE,
    "o{": ZERO_OR_MORE,
    "zero or more": ZERO_OR_MORE,
    "zero or many": ZERO_OR_MORE,
    "0+": ZERO_OR_MORE,
    "many(0)": ZERO_OR_MORE,
    "many": ZERO_OR_MORE,
    "}|": ONE_OR_MORE,
    "|{": ONE_OR_MORE,
    "one or more": ONE_OR_MORE,
    "one or many": ONE_OR_MORE,
    "1+": ONE_OR_MORE,
    "many(1)": ONE_OR_MORE,
    "||": ONLY_ONE,
    "one": ONLY_ONE,
    "only one": ONLY_ONE,
    "1": ONLY_ONE,
    "u": MD_PARENT,
}
_IDENTIFYING_LINKS = {"--", "to"}
DIRECTIONS = ("TB", "BT", "LR", "RL")

# The first word of the other mermaid diagram types, to say "this is a flowchart" instead of
# "missing header".
_OTHER_DIAGRAMS = {
    "graph",
    "flowchart",
    "flowchart-elk",
    "sequencediagram",
    "classdiagram",
    "classdiagram-v2",
    "statediagram",
    "statediagram-v2",
    "gantt",
    "pie",
    "journey",
    "gitgraph",
    "mindmap",
    "timeline",
    "quadrantchart",
    "requirementdiagram",
    "c4context",
    "c4container",
    "c4component",
    "c4dynamic",
    "c4deployment",
    "sankey-beta",
    "xychart-beta",
    "block-beta",
    "packet-beta",
    "architecture-beta",
    "kanban",
    "radar-beta",
    "zenuml",
    "treemap-beta",
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
        return {"type": self.type, "name": self.name, "keys": list(self.keys) or None, "comment": self.comment}


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
        return {
            "left": self.left,
            "right": self.right,
            "left_cardinality": self.left_cardinality,
            "right_cardinality": self.right_cardinality,
            "identifying": self.identifying,
            "label": self.label,
        }

    def sentence(self) -> str:
        """Plain words: ``CUSTOMER places ORDER (exactly one CUSTOMER to zero or more ORDER)``."""
        verb = self.label or "is related to"
        text = (
            f"{self.left} {verb} {self.right} ({CARDINALITY_WORDS[self.left_cardinality]} "
            f"{self.left} to {CARDINALITY_WORDS[self.right_cardinality]} {self.right}"
        )
        return text + ("" if self.identifying else "; non-identifying") + ")"


class Diagram:
    """A parsed erDiagram.

    ``entities`` (names in order of first appearance), ``relationships`` and ``notes`` (the text of
    the ``%%`` comment lines, in order) are the parsed records; ``graph`` is the same content as a
    ``networkx.MultiDiGraph`` (one node per entity with ``alias``, ``attributes`` and ``classes``,
    one edge left -> right per relationship), built on first use.
    """

    def __init__(
        self,
        *,
        text: str,
        entities: dict[str, Entity],
        relationships: list[Relationship],
        notes: list[str],
        title: str | None = None,
        acc_title: str | None = None,
        acc_descr: str | None = None,
        direction: str | None = None,
        styles: dict[str, tuple[str, ...]] | None = None,
        class_defs: dict[str, tuple[str, ...]] | None = None,
        path: str | None = None,
    ):
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
        self._variables: dict[str, Any] | None = None

    def __repr__(self) -> str:
        counts = self.summary()
        return (
            f"Diagram({counts['entities']} entities, {counts['relationships']} relationships, {counts['notes']} notes)"
        )

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

            graph = nx.MultiDiGraph(
                title=self.title,
                acc_title=self.acc_title,
                acc_descr=self.acc_descr,
                direction=self.direction,
                notes=list(self.notes),
            )
            for entity in self._entities.values():
                graph.add_node(
                    entity.name,
                    alias=entity.alias,
                    attributes=[a.to_dict() for a in entity.attributes],
                    classes=list(entity.classes),
                )
            for index, rel in enumerate(self.relationships):
                graph.add_edge(
                    rel.left,
                    rel.right,
                    index=index,
                    left_cardinality=rel.left_cardinality,
                    right_cardinality=rel.right_cardinality,
                    identifying=rel.identifying,
                    label=rel.label,
                )
            self._graph = graph
        return self._graph

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``conformance/mermaid_er/README.md``: entities, relationships, notes."""
        return {
            "entities": {
                e.name: {"alias": e.alias, "attributes": [a.to_dict() for a in e.attributes]}
                for e in self._entities.values()
            },
            "relationships": [r.to_dict() for r in self.relationships],
            "notes": list(self.notes),
        }

    def summary(self) -> dict[str, int]:
        """Counts: entities, relationships, attributes, notes."""
        return {
            "entities": len(self._entities),
            "relationships": len(self.relationships),
            "attributes": sum(len(e.attributes) for e in self._entities.values()),
            "notes": len(self.notes),
        }

    def template_variables(self) -> dict[str, Any]:
        """What prompt templates see of the diagram (the same for every request: computed once)."""
        if self._variables is None:
            self._variables = {
                "entities": list(self.entities),
                "relations": [dict(r) for r in self.to_dict().get("relationships", [])],
                "notes": list(self.notes),
                "scene": self.describe(),
            }
        return self._variables

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
