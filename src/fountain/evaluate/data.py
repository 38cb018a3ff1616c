"""The conversations ``fountain evaluate`` trains and measures on: the train and test splits of a
published folder (``data/train.jsonl``, ``data/test.jsonl``) or of an output folder (split here as
``fountain publish`` would: families together, no near-copy of a test record in train), and real
conversations given with ``--real-data``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fountain.evaluate.model import EvaluateError

Messages = list[dict[str, Any]]
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class Splits:
    train: list[Messages]
    test: list[Messages]
    source: str  # "published folder" | "output folder (split here)"
    dropped: int = 0


def messages_of(record: dict[str, Any]) -> Messages:
    """OpenAI-style messages of a messages or ShareGPT record (``weight`` kept)."""
    if "messages" in record:
        return [dict(m) for m in record["messages"]]
    out = []
    for item in record.get("conversations") or []:
        message: dict[str, Any] = {"role": _ROLES.get(str(item.get("from")), "user"), "content": item.get("value", "")}
        if item.get("weight") is not None:
            message["weight"] = item["weight"]
        out.append(message)
    return out


def _read_jsonl(path: Path) -> list[Messages]:
    conversations = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                conversations.append(messages_of(json.loads(line)))
            except (ValueError, AttributeError, TypeError) as error:
                raise EvaluateError(
                    f"line {number} is not a conversation record ({error})",
                    location=f"{path}:{number}",
                    hint="evaluate reads what `fountain run` or `fountain publish` wrote",
                ) from None
    return conversations


def load_splits(output: str | Path, *, test_size: float, seed: int) -> Splits:
    """Train and test conversations of ``output`` (a published folder or an output folder)."""
    folder = Path(output)
    train_file, test_file = folder / "data" / "train.jsonl", folder / "data" / "test.jsonl"
    if train_file.is_file():
        test = _read_jsonl(test_file) if test_file.is_file() else []
        splits = Splits(_read_jsonl(train_file), test, "published folder")
    else:
        from fountain.publish.source import read_source
        from fountain.publish.splits import split_records

        source = read_source(folder)
        split = split_records(source.records, test_size, seed=seed)
        splits = Splits(
            [messages_of(source.records[i]) for i in split.train],
            [messages_of(source.records[i]) for i in split.test],
            "output folder (split here)",
            len(split.dropped),
        )
    if not splits.train:
        raise EvaluateError("no conversations to train on", location=str(folder), hint="generate more data first")
    if not splits.test:
        raise EvaluateError(
            "no test conversations to measure on",
            location=str(folder),
            hint="use a folder with at least two seed conversations, or publish it with --test-size above 0",
        )
    return splits


def load_real_messages(path: str | Path) -> list[Messages]:
    """Real conversations (any format ``fountain report --real-data`` reads) as messages."""
    from fountain.report.load import load_real

    return [[{"role": role, "content": content} for role, content in item.messages] for item in load_real(path)]
