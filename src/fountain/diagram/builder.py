"""The statements of a parsed diagram (the transformer's tuples) collected into a
:class:`~fountain.diagram.model.Diagram`: entities, relationships, styles, classes, the
accessibility title and description, the direction."""

from __future__ import annotations

import re
from typing import Any

from fountain.diagram.explain import Source
from fountain.diagram.model import (
    _CARDINALITY,
    _IDENTIFYING_LINKS,
    DIRECTIONS,
    Diagram,
    Entity,
    Relationship,
)


class DiagramBuilder:
    """Collects a diagram's statements (the transformer's tuples), one method per kind."""

    def __init__(self, source: Source):
        self.source = source
        self.entities: dict[str, dict[str, Any]] = {}
        self.relationships: list[Relationship] = []
        self.styles: dict[str, list[str]] = {}
        self.class_defs: dict[str, list[str]] = {}
        self.classes: dict[str, list[str]] = {}
        self.meta: dict[str, str | None] = {"acc_title": None, "acc_descr": None, "direction": None}
        self._handlers = {
            "entity": self._entity,
            "relationship": self._relationship,
            "style": self._style,
            "class_def": self._class_def,
            "class": self._class,
            "acc_title": self._acc_title,
            "acc_descr": self._acc_descr,
            "direction": self._direction,
        }

    def add(self, statement: tuple) -> None:
        handler = self._handlers.get(statement[0])
        if handler is not None:
            handler(statement)

    def _add_entity(self, token, alias=None, class_names=()) -> str:
        if token.type == "NAME" and token.lower() == "erdiagram":
            raise self.source.error(
                "`erDiagram` appears a second time",
                token.line,
                token.column,
                hint="a file holds one diagram: remove the extra `erDiagram` line",
            )
        name = _name(token)
        record = self.entities.setdefault(name, {"alias": None, "attributes": []})
        if alias is not None and record["alias"] is None:  # mermaid keeps the first alias
            record["alias"] = _name(alias)
        for class_name in class_names:
            _append_unique(self.classes.setdefault(name, []), class_name)
        return name

    def _entity(self, statement: tuple) -> None:
        (token, alias, class_names), block = statement[1], statement[2]
        name = self._add_entity(token, alias, class_names)
        if block:
            self.entities[name]["attributes"].extend(block)

    def _relationship(self, statement: tuple) -> None:
        _, left, card_left, link, card_right, right, label = statement
        left_name = self._add_entity(*left)
        right_name = self._add_entity(*right)
        self.relationships.append(
            Relationship(
                left=left_name,
                right=right_name,
                left_cardinality=_CARDINALITY[" ".join(card_left.lower().split())],
                right_cardinality=_CARDINALITY[" ".join(card_right.lower().split())],
                identifying=" ".join(link.lower().split()) in _IDENTIFYING_LINKS,
                label=label[1:-1] if label.type == "QUOTED_LABEL" else label.strip(),
                line=left[0].line + self.source.line_shift,
            )
        )

    def _style(self, statement: tuple) -> None:
        ids, rest = _ids_and_rest(_argument(statement[1]))
        for entity_id in ids:
            self.styles.setdefault(entity_id, []).extend(_comma_list(rest))

    def _class_def(self, statement: tuple) -> None:
        ids, rest = _ids_and_rest(_argument(statement[1]))
        for class_name in ids:
            self.class_defs[class_name] = _comma_list(rest)

    def _class(self, statement: tuple) -> None:
        ids, rest = _ids_and_rest(_argument(statement[1]))
        for entity_id in ids:
            for class_name in _comma_list(rest):
                _append_unique(self.classes.setdefault(entity_id, []), class_name)

    def _acc_title(self, statement: tuple) -> None:
        self.meta["acc_title"] = statement[1].split(":", 1)[1].strip() or None

    def _acc_descr(self, statement: tuple) -> None:
        token = statement[1]
        if token.type == "ACC_DESCR":
            self.meta["acc_descr"] = token.split(":", 1)[1].strip() or None
        else:  # accDescr { ... }: mermaid trims and drops each line's indentation
            body = token[token.index("{") + 1 : -1].strip()
            self.meta["acc_descr"] = re.sub(r"\n\s+", "\n", body) or None

    def _direction(self, statement: tuple) -> None:
        token = statement[1]
        word = _argument(token).split()[0]
        value = word.upper()
        if value not in DIRECTIONS:
            column = token.column + token.index(word)
            hint = "use TB, BT, LR or RL" + (" (TD is the flowchart spelling of TB)" if value == "TD" else "")
            raise self.source.error(f"unknown direction `{word}`", token.line, column, hint=hint)
        self.meta["direction"] = value

    def diagram(self, text: str) -> Diagram:
        built = {
            name: Entity(
                name=name,
                alias=record["alias"],
                attributes=tuple(record["attributes"]),
                classes=tuple(self.classes.get(name, ())),
            )
            for name, record in self.entities.items()
        }
        return Diagram(
            text=text,
            entities=built,
            relationships=self.relationships,
            notes=self.source.notes,
            title=self.source.title,
            acc_title=self.meta["acc_title"],
            acc_descr=self.meta["acc_descr"],
            direction=self.meta["direction"],
            styles={k: tuple(v) for k, v in self.styles.items()},
            class_defs={k: tuple(v) for k, v in self.class_defs.items()},
            path=self.source.path,
        )


def _name(token) -> str:
    return token[1:-1] if token.type == "QUOTED_NAME" else str(token)


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
