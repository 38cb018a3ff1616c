"""Load the real (possibly private) conversations the PE and RF raters compare against.

Accepted inputs:

- JSONL, one conversation per line, in any shape fountain exports:
  ``{"messages": [{"role", "content"}...], "metadata": {"category": ...}}`` (OpenAI messages),
  ``{"conversations": [{"from", "value"}...], "category": ...}`` (ShareGPT), or
  ``{"conversations": [{"user", "assistant"}...], "category": ...}`` (Janus record);
- a JSON array of such records (the original platform's ``outputs.json``).

The category is read from ``metadata.category`` or ``category``; records without one take
``default_category`` or are refused. Exact duplicates (after text normalisation) are refused: a
record present twice counts twice in the PE histogram, which breaks its privacy guarantee.

The data may be private, so no message here ever quotes it: errors name the file, the line and
the structural problem only ("line 12 duplicates line 3").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fountain.errors import RealDataError
from fountain.raters.dedup import normalize_text
from fountain.types import Turn

_FORMATS_HINT = (
    "each record needs 'messages' (OpenAI: role/content), or 'conversations' "
    "(ShareGPT: from/value, or Janus: user/assistant), and a category in "
    "'metadata.category' or 'category'"
)
_USER_ROLES = {"user", "human"}
_ASSISTANT_ROLES = {"assistant", "gpt", "model", "chatgpt", "bot"}
_SYSTEM_ROLES = {"system"}


@dataclass(frozen=True)
class RealConversation:
    """One real conversation: its turns, its category and the 1-based line it starts on."""

    turns: tuple[Turn, ...]
    category: str
    line: int


def load_real_data(
    path: str | Path, *, default_category: str | None = None, allow_duplicates: bool = False
) -> list[RealConversation]:
    """Read real conversations from JSONL or a JSON array; raise RealDataError on bad input."""
    path = Path(path)
    if not path.is_file():
        raise RealDataError(
            f"real data file not found: {path}",
            location=str(path),
            hint="pass an existing JSONL file (or a Janus outputs.json) to --real-data",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RealDataError(
            f"not UTF-8 text (byte {error.start})", location=str(path), hint="save the file as UTF-8"
        ) from None
    except OSError as error:
        raise RealDataError(f"cannot read the file: {error.strerror}", location=str(path)) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    stripped = text.lstrip()
    if not stripped:
        raise RealDataError(
            "the real data file is empty",
            location=str(path),
            hint="it needs at least one conversation; " + _FORMATS_HINT,
        )
    records = _array_records(text, path) if stripped.startswith("[") else _jsonl_records(text, path)
    conversations = [_parse_record(record, line, path, default_category) for line, record in records]
    if not conversations:
        raise RealDataError("the real data file holds no conversation", location=str(path), hint=_FORMATS_HINT)
    if not allow_duplicates:
        _refuse_duplicates(conversations, path)
    return conversations


def group_by_category(conversations: list[RealConversation]) -> dict[str, list[RealConversation]]:
    """Conversations grouped by category, in file order."""
    groups: dict[str, list[RealConversation]] = {}
    for conversation in conversations:
        groups.setdefault(conversation.category, []).append(conversation)
    return groups


def _jsonl_records(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            # error.msg describes the syntax problem only; never the line's content.
            raise RealDataError(
                f"not valid JSON ({error.msg} at column {error.colno})",
                location=f"{path}:{number}",
                hint="JSONL needs one complete JSON object per line",
            ) from None


def _array_records(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """Elements of a top-level JSON array, each with the line its value starts on."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    expect_value = True
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            raise RealDataError(
                "unexpected end of file inside the JSON array",
                location=f"{path}:{_line_of(text, pos)}",
                hint="close the array with ]",
            )
        char = text[pos]
        if char == "]":
            if _skip_space(text, pos + 1) < len(text):
                raise RealDataError("extra data after the JSON array", location=f"{path}:{_line_of(text, pos + 1)}")
            return
        if not expect_value:
            if char != ",":
                raise RealDataError(
                    "expected ',' or ']' between array elements", location=f"{path}:{_line_of(text, pos)}"
                )
            pos += 1
            expect_value = True
            continue
        line = _line_of(text, pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            raise RealDataError(
                f"not valid JSON ({error.msg})", location=f"{path}:{error.lineno}:{error.colno}"
            ) from None
        expect_value = False
        yield line, value


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _parse_record(record: Any, line: int, path: Path, default_category: str | None) -> RealConversation:
    where = f"{path}:{line}"
    if not isinstance(record, dict):
        raise RealDataError(
            f"expected a JSON object, found {type(record).__name__}", location=where, hint=_FORMATS_HINT
        )
    if "messages" in record:
        turns = _turns_from_messages(record["messages"], where)
    elif "conversations" in record:
        turns = _turns_from_conversations(record["conversations"], where)
    else:
        keys = ", ".join(sorted(map(str, record))[:8]) or "none"
        raise RealDataError(f"unknown record shape (keys: {keys})", location=where, hint=_FORMATS_HINT)
    if not turns:
        raise RealDataError(
            "the conversation has no turns",
            location=where,
            hint="remove the record or give it at least one user/assistant exchange",
        )
    metadata = record.get("metadata")
    category = metadata.get("category") if isinstance(metadata, dict) else None
    if category is None:
        category = record.get("category")
    if category is None:
        category = default_category
    if category is None:
        raise RealDataError(
            "the record has no category",
            location=where,
            hint="add metadata.category (or category) to every record, or give a default category",
        )
    if not isinstance(category, str) or not category.strip():
        raise RealDataError("the category must be a non-empty string", location=where)
    return RealConversation(tuple(turns), category.strip(), line)


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise RealDataError(
            f"{what} must be a string, found {type(value).__name__}", location=where, hint=_FORMATS_HINT
        )
    return value


def _pair(roles_and_texts: list[tuple[str, str]], where: str) -> list[Turn]:
    """Pair alternating user/assistant messages into turns (system messages are skipped)."""
    turns: list[Turn] = []
    pending: str | None = None
    for index, (role, content) in enumerate(roles_and_texts, start=1):
        if role in _SYSTEM_ROLES:
            continue
        if role in _USER_ROLES:
            if pending is not None:
                raise RealDataError(
                    f"message {index}: two user messages in a row",
                    location=where,
                    hint="user and assistant messages must alternate",
                )
            pending = content
        elif role in _ASSISTANT_ROLES:
            if pending is None:
                raise RealDataError(
                    f"message {index}: an assistant message without a user message before it",
                    location=where,
                    hint="user and assistant messages must alternate, user first",
                )
            turns.append(Turn(pending, content))
            pending = None
        else:
            raise RealDataError(
                f"message {index}: unknown role",
                location=where,
                hint="roles are user/assistant/system (ShareGPT: human/gpt/system)",
            )
    if pending is not None:
        raise RealDataError(
            "the last user message has no assistant answer",
            location=where,
            hint="end each conversation with an assistant message",
        )
    return turns


def _turns_from_messages(messages: Any, where: str) -> list[Turn]:
    if not isinstance(messages, list):
        raise RealDataError("'messages' must be a list", location=where, hint=_FORMATS_HINT)
    pairs = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise RealDataError(f"message {index} needs 'role' and 'content'", location=where, hint=_FORMATS_HINT)
        role = _text(message["role"], where, f"message {index} role").strip().lower()
        pairs.append((role, _text(message["content"], where, f"message {index} content")))
    return _pair(pairs, where)


def _turns_from_conversations(items: Any, where: str) -> list[Turn]:
    if not isinstance(items, list):
        raise RealDataError("'conversations' must be a list", location=where, hint=_FORMATS_HINT)
    if items and all(isinstance(item, dict) and "user" in item and "assistant" in item for item in items):
        # Janus: each item is already one exchange.
        return [
            Turn(_text(item["user"], where, f"turn {i} user"), _text(item["assistant"], where, f"turn {i} assistant"))
            for i, item in enumerate(items, start=1)
        ]
    pairs = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "from" not in item or "value" not in item:
            raise RealDataError(
                f"conversation item {index} needs 'from' and 'value' (ShareGPT) or 'user' and 'assistant' (Janus)",
                location=where,
                hint=_FORMATS_HINT,
            )
        role = _text(item["from"], where, f"item {index} 'from'").strip().lower()
        pairs.append((role, _text(item["value"], where, f"item {index} value")))
    return _pair(pairs, where)


def conversation_key(turns: tuple[Turn, ...]) -> str:
    """The normalised text two records must share to count as duplicates."""
    return normalize_text("\n".join(f"{turn.user}\n{turn.assistant}" for turn in turns))


def _refuse_duplicates(conversations: list[RealConversation], path: Path) -> None:
    first_line: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for conversation in conversations:
        key = conversation_key(conversation.turns)
        if key in first_line:
            pairs.append((conversation.line, first_line[key]))
        else:
            first_line[key] = conversation.line
    if not pairs:
        return
    shown = ", ".join(f"line {dup} duplicates line {orig}" for dup, orig in pairs[:5])
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    raise RealDataError(
        f"{len(pairs)} duplicate record(s): {shown}{more}",
        location=f"{path}:{pairs[0][0]}",
        hint="remove or merge them: each private record must appear once, or a record counted "
        "twice breaks the differential-privacy guarantee",
    )
