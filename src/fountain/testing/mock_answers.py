"""The mock server's answers: deterministic conversations (from a request's JSON schema, or in the Janus prose format), naming the prompt's topic, with no assistant sentence said twice."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

# --- deterministic answers -----------------------------------------------------------------------

_INSTRUCT_HINT = re.compile(r'"conversation"\s*:\s*\{')

_OPENERS = (
    "Honestly,",
    "Lately",
    "So",
    "Here is the thing:",
    "I wonder whether",
    "Quick question:",
    "To be frank,",
    "Okay, so",
    "This week",
    "Between us,",
    "Right now",
    "Recently",
)
_SUBJECTS = (
    "my partner",
    "my manager",
    "the team",
    "our landlord",
    "my brother",
    "the client",
    "my roommate",
    "the new hire",
    "my mother",
    "our neighbour",
    "the reviewer",
    "my best friend",
    "the committee",
    "my coach",
    "the school",
)
_VERBS = (
    "handle",
    "plan",
    "discuss",
    "fix",
    "budget for",
    "explain",
    "schedule",
    "rethink",
    "negotiate",
    "document",
    "prioritise",
    "revisit",
    "test",
    "untangle",
    "share",
)
_OBJECTS = (
    "the weekly chores",
    "a late invoice",
    "the holiday trip",
    "our savings goal",
    "a flaky unit test",
    "the morning routine",
    "a tense dinner",
    "the moving boxes",
    "the garden project",
    "an overdue report",
    "the car repair",
    "a birthday surprise",
    "the database migration",
    "our shared calendar",
    "the kitchen renovation",
    "a job offer",
    "the reading list",
    "the quarterly review",
    "a noisy pipeline",
)
_QUALIFIERS = (
    "without starting another argument",
    "before the deadline on Friday",
    "in small steps",
    "with a written checklist",
    "while keeping everyone informed",
    "by agreeing on one concrete rule",
    "using a shared spreadsheet",
    "after a calm conversation",
    "with a fixed weekly slot",
    "by testing one change",
    "without spending extra money",
    "by asking for a second opinion",
)
_ADVICE = (
    "Start by writing down what",
    "It helps to agree on how",
    "Try to notice when",
    "Consider asking",
    "A practical first step is to decide how",
    "Think about why",
    "You could propose that",
    "Set aside ten minutes to review how",
)
_FOLLOWUPS = (
    "Then check after a week whether it worked.",
    "Keep the tone curious rather than blaming.",
    "Write the agreement down so nobody has to remember it.",
    "Pick the smallest change that would make a difference.",
    "Revisit the plan together once the first result is in.",
    "Name one thing that already works and keep it.",
    "Measure it once before and once after the change.",
    "Ask what the other person needs before proposing a fix.",
)


def _user_text(rng: random.Random) -> str:
    return (
        f"{rng.choice(_OPENERS)} how should I {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"when {rng.choice(_SUBJECTS)} keeps asking me to {rng.choice(_VERBS)} "
        f"{rng.choice(_OBJECTS)}? Case {rng.randrange(10_000)}."
    )


def _fresh(rng: random.Random, options: tuple[str, ...], used: set[str] | None) -> str:
    """One of ``options``, not one already ``used`` in this answer while any is left (a decent
    model does not say the same sentence twice in a conversation)."""
    left = [o for o in options if used is None or o not in used] or list(options)
    choice = rng.choice(left)
    if used is not None:
        used.add(choice)
    return choice


def _assistant_text(rng: random.Random, used: set[str] | None = None) -> str:
    return (
        f"{_fresh(rng, _ADVICE, used)} {rng.choice(_SUBJECTS)} wants to {rng.choice(_VERBS)} "
        f"{rng.choice(_OBJECTS)}, and {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"{rng.choice(_QUALIFIERS)}. {_fresh(rng, _FOLLOWUPS, used)} "
        f"Plan number {rng.randrange(10_000)} is a reasonable place to begin."
    )


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return "string"
    return str(kind).lower()  # Gemini's responseSchema spells types in capitals


def instance_from_schema(
    schema: Any, rng: random.Random, key: str = "", root: Any = None, used: set[str] | None = None
) -> Any:
    """A value valid against the (simple) JSON schema, with readable text in strings (no sentence
    of the assistant's said twice in one answer).

    Local ``$ref``s (``#/$defs/...``, ``#/definitions/...``) are followed.
    """
    used = set() if used is None else used
    if not isinstance(schema, dict):
        return _assistant_text(rng, used)
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance_from_schema(target, rng, key, root, used)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return instance_from_schema(schema[combinator][0], rng, key, root, used)
    kind = _schema_type(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        names = schema.get("required") or list(props)
        return {name: instance_from_schema(props.get(name, {}), rng, name, root, used) for name in names}
    if kind == "array":
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", low + 2))
        count = rng.randint(low, max(low, min(high, low + 4)))
        return [instance_from_schema(schema.get("items", {}), rng, key, root, used) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 10)
        return rng.randint(int(low), int(high))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    text = _user_text(rng) if key == "user" else _assistant_text(rng, used)
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    if min_len and len(text) < int(min_len):
        text = (text + " ") * (int(min_len) // max(len(text), 1) + 1)
    if max_len:
        text = text[: int(max_len)]
    return text


_TOPIC = re.compile(r"\btopic:\s*([^.\n%\\\"]{1,80})", re.I)


def _grounded(data: Any, body: Any) -> Any:
    """``data`` with its first assistant message naming the prompt's ``Topic:`` (as a model that
    reads the scene would), so answers pass fountain's grounding gate."""
    found = _TOPIC.search(json.dumps(body, ensure_ascii=False))
    if not found:
        return data
    topic = " ".join(found.group(1).split())

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if isinstance(node.get("assistant"), str):
                node["assistant"] += f" We will keep {topic} in mind."
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    walk(data)
    return data


def conversation_without_schema(prompt: str, rng: random.Random) -> dict[str, Any]:
    """What a model asked in prose for the Janus output format would answer."""
    if _INSTRUCT_HINT.search(prompt):
        return {"conversation": {"user": _user_text(rng), "assistant": _assistant_text(rng)}}
    turns = rng.randint(2, 3)
    used: set[str] = set()
    return {"conversations": [{"user": _user_text(rng), "assistant": _assistant_text(rng, used)} for _ in range(turns)]}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts / Anthropic blocks / Gemini parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def openai_envelope(text: str, model: str, rng: random.Random, size: int) -> dict[str, Any]:
    """A chat.completion body carrying ``text``."""
    prompt_tokens, completion_tokens = size // 4, len(text) // 4
    return {
        "id": f"chatcmpl-{rng.randrange(1 << 48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def anthropic_envelope(
    content: list[dict[str, Any]], stop: str, model: str, rng: random.Random, size: int, out_tokens: int
) -> dict[str, Any]:
    """An Anthropic message body carrying ``content`` blocks (text or tool_use)."""
    return {
        "id": f"msg_{rng.randrange(1 << 48):012x}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": size // 4, "output_tokens": out_tokens},
    }
