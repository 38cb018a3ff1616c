"""The one tolerant boundary every provider answer crosses before fountain uses or stores it.

A model's answer is untrusted bytes. Whatever shape it has, the adapters turn it into a
:class:`~fountain.providers.base.Completion` through these helpers, or into a
:class:`MalformedAnswerError` (retryable, with a reason code); never into a ``TypeError``,
``RecursionError`` or ``OverflowError`` that would crash a run, and never into a cache row that
crashes the next run.

- :func:`parse_body` parses a response body with a size limit (:data:`MAX_ANSWER_BYTES`) and a
  nesting limit (:data:`MAX_DEPTH`).
- :func:`content_text` accepts the text of an answer as a string, ``None`` or a list of content
  parts; any other type (int, bool, dict) is a malformed answer.
- :func:`parse_data` parses the JSON an answer's text holds; anything too deep or too large is
  ``None`` (validation then rejects the sample with the raw text).
- :func:`token_count` and :func:`usage_of` read token counts: strings, NaN, infinities, negative
  numbers and absurd values (above :data:`MAX_TOKENS`) become 0 or are clamped.
"""

from __future__ import annotations

from typing import Any

from fountain.errors import TransientProviderError
from fountain.fastjson import loads
from fountain.types import MAX_TOKENS, Usage, token_count

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a chat completion is kilobytes; this is far beyond any real one
MAX_DEPTH = 128  # an answer (a conversation of strings) nests a handful of levels


class MalformedAnswerError(TransientProviderError):
    """A 200 answer fountain cannot use (not JSON, too deep, too large, wrong types).

    Retryable: a sampled answer may come out well next time. ``reason`` is a short code that
    ends up in the reject when retries are spent.
    """

    def __init__(self, provider: str, reason: str, detail: str, *, status: int | None = 200):
        super().__init__(
            f"{provider}: malformed answer ({reason}): {detail}",
            status=status,
            hint="temporary; the engine retries it and rejects the sample if it keeps happening",
        )
        self.reason = reason


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (parsed JSON) nests deeper than ``limit`` containers (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_body(raw: bytes | str, provider: str) -> Any:
    """The JSON value of a 200 answer's body, or raise :class:`MalformedAnswerError`."""
    if len(raw) > MAX_ANSWER_BYTES:
        raise MalformedAnswerError(provider, "too_large", f"{len(raw):,} bytes (limit {MAX_ANSWER_BYTES:,})")
    try:
        value = loads(raw)
    except ValueError as error:
        head = raw[:120]
        raise MalformedAnswerError(provider, "not_json", f"malformed JSON ({str(error)[:120]}): {head!r}") from None
    if _may_nest_deeply(raw) and depth_exceeds(value):
        raise MalformedAnswerError(provider, "too_deep", f"JSON nests deeper than {MAX_DEPTH} levels")
    return value


def _may_nest_deeply(raw: bytes | str) -> bool:
    """False when the JSON text cannot nest deeper than :data:`MAX_DEPTH`: each level opens a
    container, so it has at most as many levels as ``{`` and ``[`` characters."""
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[") > MAX_DEPTH
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH


def content_text(content: Any, provider: str) -> str:
    """The answer's text from a ``content`` field: a string, ``None`` (empty) or content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        texts = []
        for part in content:
            text = part.get("text") if isinstance(part, dict) else None
            if text is None:
                continue
            if not isinstance(text, str):
                raise MalformedAnswerError(provider, "bad_content", f"a content part's text is {type(text).__name__}")
            texts.append(text)
        return "".join(texts)
    raise MalformedAnswerError(provider, "bad_content", f"content is {type(content).__name__}, not text")


def parse_data(text: str, *, strict: bool = True) -> Any:
    """The JSON value ``text`` holds, or ``None`` when it is not JSON, too large or too deep."""
    if len(text) > MAX_ANSWER_BYTES:
        return None
    try:
        if strict:
            value = loads(text)
        else:
            import json

            value = json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None
    return None if _may_nest_deeply(text) and depth_exceeds(value) else value


def usage_of(source: Any, prompt_key: str = "prompt_tokens", completion_key: str = "completion_tokens") -> Usage:
    """A :class:`Usage` from a mapping or an object with the two count fields (anything else: 0)."""
    if source is None:
        return Usage()
    if isinstance(source, dict):
        return Usage(token_count(source.get(prompt_key)), token_count(source.get(completion_key)))
    return Usage(token_count(getattr(source, prompt_key, None)), token_count(getattr(source, completion_key, None)))


__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "MalformedAnswerError",
    "content_text",
    "depth_exceeds",
    "parse_body",
    "parse_data",
    "token_count",
    "usage_of",
]
