"""A JSON value read out of a model's text: code fences, smart quotes, trailing commas, the
first balanced object or array. Never raises anything but :class:`ExtractionError`."""

from __future__ import annotations

import json
import re
from typing import Any


class ExtractionError(ValueError):
    """No JSON value in a text. ``reason`` is ``invalid_json`` or ``truncated``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})


def _strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}`` or ``]``, outside strings."""
    out: list[str] = []
    in_string = escaped = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes ``text[start]``, or None when the text ends first."""
    stack: list[str] = []
    in_string = escaped = False
    pairs = {"{": "}", "[": "]"}
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                return i + 1  # mismatched: let the parser report it
            stack.pop()
            if not stack:
                return i + 1
    return None


def _loads(candidate: str) -> Any:
    """json.loads, then with trailing commas removed, then with smart quotes made plain."""
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    fixed = _strip_trailing_commas(candidate)
    try:
        return json.loads(fixed)
    except ValueError:
        pass
    if any(q in candidate for q in "\u201c\u201d\u201e\u2033"):
        return json.loads(_strip_trailing_commas(candidate.translate(_SMART)))
    raise ValueError("not JSON")


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer.

    Survives code fences, prose before or after the value, trailing commas and curly quotes used
    as JSON quotes. Raises :class:`ExtractionError` with reason ``truncated`` when a value starts
    but never closes, else ``invalid_json``.
    """
    if not isinstance(text, str):
        raise ExtractionError("invalid_json", f"expected text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ExtractionError("invalid_json", "the answer is empty")
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    sources = [m.group(1) for m in _FENCE.finditer(stripped) if m.group(1).strip()]
    sources.append(stripped)
    truncated = False
    for source in sources:
        # Try each opening bracket in turn (prose may contain a stray "[" before the object);
        # a bounded number of starts keeps a pathological answer from costing much.
        starts = [i for i, ch in enumerate(source) if ch in "{["][:50]
        for start in starts:
            end = _balanced_end(source, start)
            if end is None:
                truncated = True
                # A value that never closes: every later start lies inside it.
                break
            try:
                return _loads(source[start:end])
            except ValueError:
                continue
    if truncated:
        raise ExtractionError(
            "truncated", "the JSON starts but never ends (the answer was probably cut at its token limit)"
        )
    snippet = " ".join(stripped.split())[:80]
    raise ExtractionError("invalid_json", f"no JSON object found in the answer: {snippet!r}")
