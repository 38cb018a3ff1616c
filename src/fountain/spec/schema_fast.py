"""A quick, conservative check of setup.yaml against its JSON Schema, without jsonschema.

Importing jsonschema and building its validator takes about a tenth of a second, most of a
``fountain run``'s start-up budget. :func:`surely_valid` checks the keywords setup.schema.json uses
(``type``, ``enum``, ``properties``, ``required``, ``additionalProperties``, ``items``, the number
and length bounds, ``pattern``, ``uniqueItems``, local ``$ref``) in plain Python. It answers True
only when the data certainly conforms; False means "let jsonschema decide and word the errors"
(:func:`fountain.spec.schema_errors.schema_problems`). A keyword it does not know, a float where an
integer is expected, a value of an unusual type: False. So it never accepts what the schema
rejects, and a valid spec, the common case, never imports jsonschema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# Keywords that only annotate: they never make an instance invalid.
_ANNOTATIONS = frozenset(("$schema", "$id", "title", "description", "$defs", "$comment", "default", "examples"))
_CHECKED = frozenset(
    (
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "minItems",
        "pattern",
        "uniqueItems",
        "$ref",
    )
)


@lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _is_type(value: Any, kind: str) -> bool:
    """``value`` is certainly of JSON type ``kind`` (a float never counts as an integer here)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return type(value) is int
    if kind == "number":
        return (type(value) is int) or (type(value) is float and math.isfinite(value))
    if kind == "boolean":
        return type(value) is bool
    if kind == "null":
        return value is None
    if kind == "array":
        return type(value) is list
    if kind == "object":
        return type(value) is dict and all(type(k) is str for k in value)
    return False


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


_BOUND_HOLDS: dict[str, Callable[[float, float], bool]] = {
    "minimum": lambda v, b: v >= b,
    "maximum": lambda v, b: v <= b,
    "exclusiveMinimum": lambda v, b: v > b,
    "exclusiveMaximum": lambda v, b: v < b,
}


def _bounds_ok(value: Any, schema: dict[str, Any]) -> bool:
    if not _is_number(value):
        return True  # the bounds apply to numbers only
    if type(value) is float and not math.isfinite(value):
        return False
    for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if name not in schema:
            continue
        bound = schema[name]
        if not _is_number(bound) or not _BOUND_HOLDS[name](value, bound):
            return False
    return True


def _enum_ok(value: Any, options: Any) -> bool:
    # Same type and equal (JSON Schema tells true from 1, which == does not).
    return isinstance(options, list) and any(type(value) is type(o) and value == o for o in options)


def _string_ok(value: Any, schema: dict[str, Any]) -> bool:
    if not isinstance(value, str):
        return True
    if "minLength" in schema and len(value) < schema["minLength"]:
        return False
    return "pattern" not in schema or _pattern(schema["pattern"]).search(value) is not None


def _array_ok(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if type(value) is not list:
        return True
    if "minItems" in schema and len(value) < schema["minItems"]:
        return False
    if schema.get("uniqueItems") is True and not (
        all(isinstance(v, str) for v in value) and len(set(value)) == len(value)
    ):
        return False  # only lists of text are judged here
    items = schema.get("items")
    return items is None or all(surely_valid(v, items, root) for v in value)


def _object_ok(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return True
    if any(type(k) is not str for k in value):
        return False
    if any(key not in value for key in schema.get("required", ())):
        return False
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None:
            if extra is False or (extra is not True and not surely_valid(item, extra, root)):
                return False
        elif not surely_valid(item, sub, root):
            return False
    return True


def _ref_ok(value: Any, ref: Any, root: dict[str, Any]) -> bool:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return False
    target: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(target, dict) or part not in target:
            return False
        target = target[part]
    return surely_valid(value, target, root)


def surely_valid(value: Any, schema: Any, root: dict[str, Any] | None = None) -> bool:
    """True when ``value`` certainly conforms to ``schema`` (a JSON Schema using only the keywords
    above; ``root`` resolves ``#/...`` references). False: not known (ask jsonschema)."""
    if schema is True:
        return True
    if not isinstance(schema, dict) or not schema.keys() <= (_CHECKED | _ANNOTATIONS):
        return False
    root = schema if root is None else root
    if "$ref" in schema and not _ref_ok(value, schema["$ref"], root):
        return False
    if "type" in schema:
        kinds = schema["type"]
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not isinstance(kinds, list) or not any(_is_type(value, k) for k in kinds):
            return False
    if "enum" in schema and not _enum_ok(value, schema["enum"]):
        return False
    return (
        _bounds_ok(value, schema)
        and _string_ok(value, schema)
        and _array_ok(value, schema, root)
        and _object_ok(value, schema, root)
    )
