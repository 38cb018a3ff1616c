"""setup.yaml against its JSON Schema: every schema error turned into a located problem with a
hint (the key that was meant, the expected type and range, the required keys)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fountain.errors import Problem
from fountain.spec.schema_fast import surely_valid
from fountain.spec.sourcefile import KeyPath, Locator, key_path

if TYPE_CHECKING:  # pragma: no cover
    pass


_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "nothing (null)",
}


@lru_cache(maxsize=1)
def schema_validator() -> Any:  # a jsonschema Draft202012Validator (jsonschema ships no type hints)
    """The compiled Draft 2020-12 validator of setup.schema.json (built once)."""
    from jsonschema import Draft202012Validator

    # The schema itself is checked against the meta-schema by the test suite, not at every start.
    return Draft202012Validator(setup_schema())


@lru_cache(maxsize=1)
def setup_schema() -> dict[str, Any]:
    """The JSON Schema of setup.yaml (read once; never modified)."""
    from fountain.resources import load_schema

    return load_schema("setup.schema.json")


def yaml_type(value: Any) -> str:
    import datetime

    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _known_keys(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("properties", {}))


def _nested_owner(key: str, root: dict[str, Any]) -> str | None:
    """The block a misplaced top-level key belongs in (``temperature`` -> ``model``)."""
    properties: dict[str, Any] = root["properties"]
    for block, sub in properties.items():
        if isinstance(sub, dict) and key in sub.get("properties", {}):
            return block
    return None


def _unknown_key_hint(key: str, level_schema: dict[str, Any], path: KeyPath) -> str:
    known = _known_keys(level_schema)
    close = get_close_matches(key, known, n=1, cutoff=0.6) or [k for k in known if k.lower() == str(key).lower()]
    if close:
        return f"did you mean `{close[0]}`?"
    if not path:
        owner = _nested_owner(key, setup_schema())
        if owner:
            return f"`{key}` belongs inside the `{owner}:` block"
    return "known keys here: " + ", ".join(known)


def schema_problems(data: dict[str, Any], locator: Locator) -> list[Problem]:
    """Every way ``data`` breaks setup.schema.json, located. A spec the quick check
    (:mod:`fountain.spec.schema_fast`) passes has none, and jsonschema is not even imported."""
    if surely_valid(data, setup_schema()):
        return []
    problems: list[Problem] = []
    for error in sorted(
        schema_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
    ):
        problems.extend(_convert(error, locator))
    return problems


@dataclass(frozen=True)
class _Failed:
    """One schema error, where it is and what it says."""

    error: Any  # a jsonschema ValidationError
    locator: Locator
    path: KeyPath
    where: str  # the location of the value (or its nearest parent) in setup.yaml
    name: str  # the dotted key path
    value: Any  # the value found
    rule: Any  # the keyword's value in the schema


def _convert(error: Any, locator: Locator) -> list[Problem]:
    path = tuple(error.absolute_path)
    failed = _Failed(error, locator, path, locator.at(path), key_path(path), error.instance, error.validator_value)
    return _CONVERTERS.get(error.validator, _other)(failed)


def _unknown_keys(f: _Failed) -> list[Problem]:
    known = f.error.schema.get("properties", {})
    return [
        Problem(
            f"{key_path(f.path + (key,))}: unknown key",
            f.locator.at(f.path + (key,), key=True),
            _unknown_key_hint(key, f.error.schema, f.path),
        )
        for key in f.value
        if key not in known
    ]


def _missing_keys(f: _Failed) -> list[Problem]:
    return [
        Problem(
            f"{key_path(f.path + (key,)) if f.path else key}: required key is missing", f.where, _required_hint(key)
        )
        for key in f.rule
        if key not in f.value
    ]


def _wrong_type(f: _Failed) -> list[Problem]:
    expected = [f.rule] if isinstance(f.rule, str) else list(f.rule)
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected if t != "null")
    value = f.value
    hint = None
    if "string" in expected and (isinstance(value, (bool, int, float)) or type(value).__name__ in ("date", "datetime")):
        hint = f'YAML read the value as {yaml_type(value)}: put it in quotes, e.g. "{value}"'
    elif "array" in expected and isinstance(value, str):
        hint = "write one item per line, each starting with `- `"
    elif "object" in expected:
        hint = "indent the keys of this block below it"
    return [Problem(f"{f.name}: expected {words}, got {yaml_type(value)}", f.where, hint)]


def _not_allowed(f: _Failed) -> list[Problem]:
    allowed = [a for a in f.rule if a is not None]
    close = [a for a in allowed if str(a).lower() == str(f.value).lower()] or get_close_matches(
        str(f.value), [str(a) for a in allowed], n=1, cutoff=0.5
    )
    hint = (
        ("did you mean " + str(close[0]) + "? " if close else "")
        + "allowed: "
        + ", ".join(map(str, allowed))
        + (" (or null)" if None in f.rule else "")
    )
    return [Problem(f"{f.name}: {_short_repr(f.value)} is not an allowed value", f.where, hint)]


_RELATIONS = {
    "minimum": "at least",
    "exclusiveMinimum": "greater than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}


def _out_of_range(f: _Failed) -> list[Problem]:
    relation = _RELATIONS[f.error.validator]
    hint = _range_hint(f.path) or _bound_hint(f.path, f.error.validator, f.rule, relation)
    return [Problem(f"{f.name}: must be {relation} {f.rule}, got {f.value}", f.where, hint)]


def _bound_hint(path: KeyPath, validator: str, rule: Any, relation: str) -> str:
    """A range error's generic hint: the key set to its bound (an inclusive one) or named."""
    key = str(path[-1]) if path else "the value"
    if validator in ("minimum", "maximum") and isinstance(rule, (int, float)) and not isinstance(rule, bool):
        return f"set it within the allowed range, e.g. {key}: {rule}"
    return f"set {key} within the allowed range ({relation} {rule})"


def _empty_list(f: _Failed) -> list[Problem]:
    example = f"list at least one item, e.g.\n  {f.path[-1] if f.path else f.name}:\n    - general"
    return [Problem(f"{f.name}: the list is empty", f.where, example)]


def _bad_text(f: _Failed) -> list[Problem]:
    last = f.path[-1] if f.path else None
    if last == "api_key_env":
        # Never echo the value: it may be the key itself.
        return [
            Problem(
                f"{f.name}: must be the name of an environment variable (letters, digits and _), not the key itself",
                f.where,
                "export OPENAI_API_KEY=... in the shell and write `api_key_env: OPENAI_API_KEY`",
            )
        ]
    if f.error.validator == "pattern" and last == "base_url":
        return [
            Problem(
                f"{f.name}: {_short_repr(f.value)} is not an http(s) URL",
                f.where,
                "e.g. base_url: http://localhost:8000/v1",
            )
        ]
    return [Problem(f"{f.name}: must not be empty", f.where, "write some text, or remove the key")]


def _repeated_items(f: _Failed) -> list[Problem]:
    seen, dupes = set(), []
    for item in f.value:
        marker = json.dumps(item, sort_keys=True, default=str)
        if marker in seen and item not in dupes:
            dupes.append(item)
        seen.add(marker)
    return [
        Problem(
            f"{f.name}: {_short_repr(d)} is listed more than once",
            f.where,
            "each direction is generated once per seeds_per_direction; remove the copy",
        )
        for d in dupes
    ]


def _other(f: _Failed) -> list[Problem]:
    return [Problem(f"{f.name}: {f.error.message[:200]}", f.where)]


#: The problem each JSON Schema keyword's error becomes (any other: the validator's own message).
_CONVERTERS: dict[str, Callable[[_Failed], list[Problem]]] = {
    "additionalProperties": _unknown_keys,
    "required": _missing_keys,
    "type": _wrong_type,
    "enum": _not_allowed,
    **dict.fromkeys(_RELATIONS, _out_of_range),
    "minItems": _empty_list,
    "minLength": _bad_text,
    "pattern": _bad_text,
    "uniqueItems": _repeated_items,
}


def _required_hint(key: str) -> str:
    examples = {
        "category": "category: marriage counsel",
        "user_role": "user_role: COUNSELEE   # an entity of the diagram",
        "assistant_role": "assistant_role: COUNSELOR   # an entity of the diagram",
        "initial_prompt": "initial_prompt: |\n    Write a conversation between {{ user_role }} and ...",
        "derivational_prompt": "derivational_prompt: |\n    Continue this conversation: {{ conversation_json }}",
        "seed_evolving_directions": "seed_evolving_directions:\n    - general",
        "derivational_evolving_directions": "derivational_evolving_directions:\n    - in-depth",
    }
    return "add it, e.g.\n  " + examples.get(key, f"{key}: ...")


def _range_hint(path: KeyPath) -> str | None:
    hints = {
        "temperature": "0 is deterministic, 0.7 is a usual value, 2 is the maximum",
        "top_p": "a probability mass in (0, 1]",
        "delta": "usually 1/(N ln N); leave it out for that default",
        "rf_percentile": "a percentile between 0 and 100",
    }
    return hints.get(str(path[-1])) if path else None
