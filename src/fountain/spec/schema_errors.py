"""setup.yaml against its JSON Schema: every schema error turned into a located problem with a
hint (the key that was meant, the expected type and range, the required keys)."""

from __future__ import annotations

import json
import re
from difflib import get_close_matches
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fountain.errors import Problem
from fountain.spec.model import CONVERSATION, INSTRUCT
from fountain.spec.schema_fast import surely_valid
from fountain.spec.sourcefile import KeyPath, Locator, key_path

if TYPE_CHECKING:  # pragma: no cover
    pass


TYPES = (CONVERSATION, INSTRUCT)
DEFAULT_MAX_TURNS = 8  # GenerationSettings.max_turns (not imported: fountain.spec.load imports this module)

_SECRET_KEY = re.compile(r"(^|[_\-])(api[_\-]?key|apikey|secret|password|token|access[_\-]?token)$", re.IGNORECASE)

_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys",
    "null": "nothing (null)",
}

_IDENTIFIER_ROLE = re.compile(r"^[A-Za-z0-9_\-]+$")


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


def _convert(error: Any, locator: Locator) -> list[Problem]:  # noqa: C901 - complexity debt, listed in docs/architecture.md
    path = tuple(error.absolute_path)
    where = locator.at(path)
    name = key_path(path)
    keyword = error.validator
    value = error.instance
    rule = error.validator_value
    if keyword == "additionalProperties":
        out = []
        for key in value:
            if key not in error.schema.get("properties", {}):
                out.append(
                    Problem(
                        f"{key_path(path + (key,))}: unknown key",
                        locator.at(path + (key,), key=True),
                        _unknown_key_hint(key, error.schema, path),
                    )
                )
        return out
    if keyword == "required":
        missing = [key for key in rule if key not in value]
        return [
            Problem(f"{key_path(path + (key,)) if path else key}: required key is missing", where, _required_hint(key))
            for key in missing
        ]
    if keyword == "type":
        expected = [rule] if isinstance(rule, str) else list(rule)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected if t != "null")
        hint = None
        if (
            "string" in expected
            and isinstance(value, (bool, int, float))
            or "string" in expected
            and type(value).__name__ in ("date", "datetime")
        ):
            hint = f'YAML read the value as {yaml_type(value)}: put it in quotes, e.g. "{value}"'
        elif "array" in expected and isinstance(value, str):
            hint = "write one item per line, each starting with `- `"
        elif "object" in expected:
            hint = "indent the keys of this block below it"
        return [Problem(f"{name}: expected {words}, got {yaml_type(value)}", where, hint)]
    if keyword == "enum":
        allowed = [a for a in rule if a is not None]
        close = [a for a in allowed if str(a).lower() == str(value).lower()] or get_close_matches(
            str(value), [str(a) for a in allowed], n=1, cutoff=0.5
        )
        hint = (
            ("did you mean " + str(close[0]) + "? " if close else "")
            + "allowed: "
            + ", ".join(map(str, allowed))
            + (" (or null)" if None in rule else "")
        )
        return [Problem(f"{name}: {_short_repr(value)} is not an allowed value", where, hint)]
    if keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "exclusiveMinimum": "greater than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[keyword]
        return [Problem(f"{name}: must be {relation} {rule}, got {value}", where, _range_hint(path))]
    if keyword == "minItems":
        return [
            Problem(
                f"{name}: the list is empty",
                where,
                f"list at least one item, e.g.\n  {path[-1] if path else name}:\n    - general",
            )
        ]
    if keyword in ("minLength", "pattern") and path and path[-1] == "api_key_env":
        # Never echo the value: it may be the key itself.
        return [
            Problem(
                f"{name}: must be the name of an environment variable (letters, digits and _), not the key itself",
                where,
                "export OPENAI_API_KEY=... in the shell and write `api_key_env: OPENAI_API_KEY`",
            )
        ]
    if keyword == "pattern" and path and path[-1] == "base_url":
        return [
            Problem(
                f"{name}: {_short_repr(value)} is not an http(s) URL", where, "e.g. base_url: http://localhost:8000/v1"
            )
        ]
    if keyword in ("minLength", "pattern"):
        return [Problem(f"{name}: must not be empty", where, "write some text, or remove the key")]
    if keyword == "uniqueItems":
        seen, dupes = set(), []
        for item in value:
            marker = json.dumps(item, sort_keys=True, default=str)
            if marker in seen and item not in dupes:
                dupes.append(item)
            seen.add(marker)
        return [
            Problem(
                f"{name}: {_short_repr(d)} is listed more than once",
                where,
                "each direction is generated once per seeds_per_direction; remove the copy",
            )
            for d in dupes
        ]
    return [Problem(f"{name}: {error.message[:200]}", where)]


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
