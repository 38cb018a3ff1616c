"""The conversation's JSON shape: the request and validation schemas, the near-misses mapped onto the shape, and the shape checked (fast path first)."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from fountain.generation.rules import INSTRUCT, Rejected, Rules
from fountain.resources import load_schema
from fountain.types import Turn

# --- schemas -----------------------------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any], *, keep_pattern: bool) -> Any:
    """``node`` with every local ``$ref`` replaced by its definition (providers differ in $ref support)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(defs[name], defs, keep_pattern=keep_pattern)
        return {
            k: _inline(v, defs, keep_pattern=keep_pattern)
            for k, v in node.items()
            if k not in ("$defs", "$id", "$schema", "title", "description") and (keep_pattern or k != "pattern")
        }
    if isinstance(node, list):
        return [_inline(v, defs, keep_pattern=keep_pattern) for v in node]
    return node


@lru_cache(maxsize=64)
def _schema(kind: str, lo: int, hi: int, keep_pattern: bool) -> dict[str, Any]:
    base = load_schema("conversation.schema.json")
    defs = base["$defs"]
    if kind == INSTRUCT:
        instruct: dict[str, Any] = _inline(defs["instruct"], defs, keep_pattern=keep_pattern)
        return instruct
    schema: dict[str, Any] = _inline(copy.deepcopy(base), defs, keep_pattern=keep_pattern)
    schema["properties"]["conversations"]["minItems"] = lo
    schema["properties"]["conversations"]["maxItems"] = hi
    return schema


def request_schema(rules: Rules) -> dict[str, Any]:
    """The JSON schema sent with a request (self-contained, no ``$ref``, no regex ``pattern``).

    A fresh copy each call, so a provider adapter may adapt it freely.
    """
    lo, hi = rules.bounds
    return copy.deepcopy(_schema(rules.type, lo, hi, False))


@lru_cache(maxsize=64)
def _validator(kind: str, lo: int, hi: int) -> Any:  # a jsonschema Draft202012Validator (no type hints)
    from jsonschema import Draft202012Validator

    # Checked against the meta-schema by the test suite (tests/generation/test_validate.py).
    return Draft202012Validator(_schema(kind, lo, hi, True))


def validation_schema(rules: Rules) -> dict[str, Any]:
    """The schema answers are checked against (the request schema plus non-blank strings)."""
    lo, hi = rules.bounds
    return copy.deepcopy(_schema(rules.type, lo, hi, True))


# --- shape -------------------------------------------------------------------------------------


def _is_turn_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, dict) and set(t) == {"user", "assistant"} for t in value)
    )


def _from_messages(value: Any) -> list[dict[str, Any]] | None:
    """Chat messages (role/content) alternating user, assistant, ... as turn dicts, else None."""
    if not (isinstance(value, list) and value and len(value) % 2 == 0):
        return None
    turns: list[dict[str, Any]] = []
    for i in range(0, len(value), 2):
        u, a = value[i], value[i + 1]
        if not (
            isinstance(u, dict)
            and isinstance(a, dict)
            and set(u) == set(a) == {"role", "content"}
            and u["role"] == "user"
            and a["role"] == "assistant"
        ):
            return None
        turns.append({"user": u["content"], "assistant": a["content"]})
    return turns


def normalize_shape(data: Any, kind: str) -> Any:
    """Map the unambiguous near-misses onto the schema's shape; anything else is left as it is.

    Accepted near-misses: a bare list of turns; a bare ``{"user", "assistant"}`` object; the
    singular/plural key swapped (``conversation`` holding a list, ``conversations`` holding one
    pair); OpenAI-style ``messages`` alternating user/assistant. Wrong keys are never renamed.
    """
    data = _unwrap_messages(data)
    return _as_instruct(data) if kind == INSTRUCT else _as_conversation(data)


def _unwrap_messages(data: Any) -> Any:
    """OpenAI-style messages (bare, or under ``messages``) as a list of turns; else ``data``."""
    if isinstance(data, dict) and set(data) == {"messages"}:
        turns = _from_messages(data["messages"])
    elif isinstance(data, list):
        turns = _from_messages(data)
    else:
        return data
    return data if turns is None else turns


def _as_instruct(data: Any) -> Any:
    """An instruct answer as ``{"conversation": {user, assistant}}`` when it is one pair."""
    if isinstance(data, dict) and set(data) == {"user", "assistant"}:
        return {"conversation": data}
    if _is_turn_list(data) and len(data) == 1:
        return {"conversation": data[0]}
    if isinstance(data, dict) and len(data) == 1:
        ((key, value),) = data.items()
        if key in ("conversation", "conversations") and _is_turn_list(value) and len(value) == 1:
            return {"conversation": value[0]}
        if key == "conversations" and isinstance(value, dict):
            return {"conversation": value}
    return data


def _as_conversation(data: Any) -> Any:
    """A conversation answer as ``{"conversations": [turns]}`` when it is unambiguously one."""
    if _is_turn_list(data):
        return {"conversations": data}
    if isinstance(data, dict) and set(data) == {"user", "assistant"}:
        return {"conversations": [data]}
    if isinstance(data, dict) and len(data) == 1:
        ((key, value),) = data.items()
        if key == "conversation" and _is_turn_list(value):
            return {"conversations": value}
        if key in ("conversation", "conversations") and isinstance(value, dict) and set(value) == {"user", "assistant"}:
            return {"conversations": [value]}
    return data


def _path(error: Any) -> str:  # a jsonschema ValidationError
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else "(top level)"


def _text_ok(value: Any) -> bool:
    # The schema's text: a string, minLength 1, pattern "\S" (searched). ``str.isspace`` and the
    # regex class "\s" use the same Unicode whitespace table, so this is the same test.
    return isinstance(value, str) and bool(value) and not value.isspace()


def _turn_ok(turn: Any) -> bool:
    return (
        isinstance(turn, dict)
        and len(turn) == 2
        and "user" in turn
        and "assistant" in turn
        and _text_ok(turn["user"])
        and _text_ok(turn["assistant"])
    )


def _fast_shape(data: Any, kind: str, lo: int, hi: int) -> bool:
    """True when ``data`` certainly passes the conversation schema (plain Python checks of the
    same rules, about 50 times faster than jsonschema). False means "let jsonschema decide and
    word the error": this never accepts anything the schema rejects."""
    if not isinstance(data, dict) or len(data) != 1:
        return False
    if kind == INSTRUCT:
        return _turn_ok(data.get("conversation"))
    turns = data.get("conversations")
    return isinstance(turns, list) and lo <= len(turns) <= hi and all(_turn_ok(turn) for turn in turns)


def check_shape(data: Any, rules: Rules) -> tuple[Turn, ...] | Rejected:
    """Turns of a parsed answer, or the schema / turn-count problem."""
    data = normalize_shape(data, rules.type)
    lo, hi = rules.bounds
    if _fast_shape(data, rules.type, lo, hi):
        return _turns_of(data, rules)
    validator = _validator(rules.type, lo, hi)
    errors = list(validator.iter_errors(data))
    if errors:
        count_errors = [
            e for e in errors if e.validator in ("minItems", "maxItems") and list(e.absolute_path) == ["conversations"]
        ]
        if count_errors and len(count_errors) == len(errors):
            n = len(data["conversations"])
            return Rejected("turn_count", f"{n} turns; the spec asks for {lo} to {hi}")
        from jsonschema.exceptions import best_match

        error = best_match(e for e in errors if e not in count_errors) if len(errors) > len(count_errors) else errors[0]
        message = error.message
        if error.validator == "pattern":
            message = "a turn is empty (only whitespace)"
        return Rejected("schema", f"{_path(error)}: {message}"[:300])
    return _turns_of(data, rules)


def _turns_of(data: Any, rules: Rules) -> tuple[Turn, ...]:
    if rules.type == INSTRUCT:
        pair = data["conversation"]
        return (Turn(pair["user"].strip(), pair["assistant"].strip()),)
    return tuple(Turn(t["user"].strip(), t["assistant"].strip()) for t in data["conversations"])
