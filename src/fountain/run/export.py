"""Dataset writers: OpenAI ``messages`` JSONL (default), ShareGPT JSONL, and the original Janus
``outputs.json``. Every file is streamed to a temporary name and renamed, so a reader never sees a
half-written dataset and memory does not grow with the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fountain import fastjson
from fountain.errors import OutputError
from fountain.run.atomic import write_jsonl_atomic, write_lines_atomic
from fountain.run.outputs import DATASET_FILES
from fountain.run.review import dropped_ids
from fountain.run.samples import ResultSamples
from fountain.types import Sample

FORMATS = ("messages", "sharegpt", "janus")
PREFIX_LOSS = ("keep", "mask")  # keep: every assistant turn trains; mask: a derivation's prefix gets weight 0


def prefix_length(record: dict[str, Any]) -> int:
    """How many leading turns of a ``messages`` record repeat its parent (0 for a seed or an
    instruct pair): the derivation's prefix, which ``--prefix-loss mask`` leaves out of the loss."""
    meta = record.get("metadata") or {}
    if meta.get("kind") == "seed" or meta.get("type") == "instruct":
        return 0
    try:
        return max(0, int(meta.get("prefix_turns") or 0))
    except (TypeError, ValueError):
        return 0


def weigh_messages(messages: list[dict[str, Any]], prefix_turns: int, key: str = "role") -> list[dict[str, Any]]:
    """``messages`` with ``weight`` on every assistant message: 0 for the first ``prefix_turns``
    (the parent's turns), 1 after (OpenAI's fine-tuning format; Axolotl and LLaMA-Factory read it).
    Every assistant message gets the key, so the column has one type in every record."""
    assistant = "assistant" if key == "role" else "gpt"
    seen = 0
    out = []
    for message in messages:
        if message.get(key) == assistant:
            message = {**message, "weight": 0 if seen < prefix_turns else 1}
            seen += 1
        out.append(message)
    return out


def _with_system(sample: Sample, system: str | None) -> Sample:
    if system and not sample.system:
        from dataclasses import replace

        return replace(sample, system=system)
    return sample


def messages_record(sample: Sample, system: str | None = None, prefix_loss: str = "keep") -> dict[str, Any]:
    """``{"messages": [{"role", "content"}...], "metadata": {...}}`` (TRL, Axolotl, LLaMA-Factory).
    With ``prefix_loss="mask"`` assistant messages carry ``weight`` (see :func:`weigh_messages`)."""
    record = _with_system(sample, system).to_record()
    if prefix_loss == "mask":
        record["messages"] = weigh_messages(record["messages"], prefix_length(record))
    return record


def sharegpt_record(sample: Sample, system: str | None = None, prefix_loss: str = "keep") -> dict[str, Any]:
    """``{"conversations": [{"from": "system"|"human"|"gpt", "value"}...], "metadata": {...}}``."""
    record = _with_system(sample, system).to_record()
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    conversations = [{"from": names[m["role"]], "value": m["content"]} for m in record["messages"]]
    if prefix_loss == "mask":
        conversations = weigh_messages(conversations, prefix_length(record), key="from")
    return {"conversations": conversations, "metadata": record["metadata"]}


def janus_record(sample: Sample) -> dict[str, Any]:
    """One entry of the original ``outputs.json``: the turns, type, category and model."""
    prov = sample.provenance
    return {
        "conversations": [{"user": t.user, "assistant": t.assistant} for t in sample.turns],
        "type": prov.conversation_type,
        "category": prov.category,
        "model": prov.model,
    }


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the output folder: {error.strerror or error}",
            location=str(folder),
            hint="choose a writable folder with --output",
        ) from None
    return folder


def _check_prefix_loss(prefix_loss: str) -> None:
    if prefix_loss not in PREFIX_LOSS:
        raise OutputError(
            f"unknown prefix loss {prefix_loss!r}", location="--prefix-loss", hint=f"one of {', '.join(PREFIX_LOSS)}"
        )


def export_dataset(
    samples: Iterable[Sample],
    folder: str | Path,
    fmt: str = "messages",
    *,
    system_message: str | None = None,
    prefix_loss: str = "keep",
) -> Path:
    """Write the dataset of ``samples`` into ``folder`` in format ``fmt``; returns the file's path.

    ``messages`` and ``sharegpt`` write ``dataset.jsonl``; ``janus`` writes ``outputs.json``.
    ``system_message`` is added as the first message of every conversation that has none.
    ``prefix_loss="mask"`` gives assistant messages a ``weight`` (0 on a derivation's prefix).
    ``samples`` is consumed once, as a stream: memory does not grow with the dataset.
    Records the folder's hand review (``review.jsonl``, :mod:`fountain.run.review`) drops are left out.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown output format {fmt!r}", location="--format", hint=f"one of {', '.join(FORMATS)}")
    _check_prefix_loss(prefix_loss)
    path = _folder(folder) / DATASET_FILES[fmt]
    dropped = dropped_ids(path.parent)
    if dropped:
        samples = (s for s in samples if s.id not in dropped)
    if fmt == "messages" and prefix_loss == "keep" and isinstance(samples, ResultSamples):
        return write_lines_atomic(path, _messages_lines(samples, system_message))
    if fmt == "messages":
        return write_jsonl_atomic(path, (messages_record(s, system_message, prefix_loss) for s in samples))
    if fmt == "sharegpt":
        return write_jsonl_atomic(path, (sharegpt_record(s, system_message, prefix_loss) for s in samples))
    return write_lines_atomic(path, _janus_chunks(samples))


_MESSAGES_START = b'{"messages":['
_SYSTEM_FIRST = _MESSAGES_START + b'{"role":"system",'


def _messages_lines(samples: ResultSamples, system_message: str | None) -> Iterator[bytes | str]:
    """``messages`` lines straight from the journals: a canonical journal line is the record
    :func:`messages_record` gives, once the system message is put first where it is to be added
    (the metadata does not depend on it)."""
    system = fastjson.dumps({"role": "system", "content": system_message}).encode("utf-8") + b","
    start = len(_MESSAGES_START)
    for line in samples.lines():
        if not system_message or line.startswith(_SYSTEM_FIRST):
            yield line
        elif line.startswith(_MESSAGES_START):
            yield _MESSAGES_START + system + line[start:]
        else:  # not canonical after all: the record itself
            sample = Sample.from_record(fastjson.loads_exact(line))
            yield fastjson.dumps(messages_record(sample, system_message)) + "\n"


def _janus_chunks(samples: Iterable[Sample]) -> Iterator[str]:
    """The original's one indented JSON list (``json.dumps(records, indent=2)``, byte for byte),
    written record by record."""
    first = True
    for sample in samples:
        # Inside the list every line of a record is indented one more level (JSON strings hold
        # no raw newline, so every newline here is formatting).
        text = json.dumps(janus_record(sample), ensure_ascii=False, indent=2).replace("\n", "\n  ")
        yield ("[\n  " if first else ",\n  ") + text
        first = False
    yield "[]\n" if first else "\n]\n"


def record_validator() -> Any:  # a jsonschema Draft202012Validator (no type hints)
    """A jsonschema validator for ``schemas/sft_record.schema.json`` (the ``messages`` record)."""
    from jsonschema import Draft202012Validator

    from fountain.resources import load_schema

    return Draft202012Validator(load_schema("sft_record.schema.json"))


def drop_stale_dataset(manifest: Any, output_dir: Path, dataset: Path, fmt: str) -> str | None:
    """An earlier session exported another file (``--format janus`` after ``messages``): it no
    longer matches the journals, so it goes (it is rebuilt, free from the cache, by running again
    with its format). Returns the warning that says so, or None."""
    earlier = manifest.exported_dataset()
    if earlier is None or earlier[0] == dataset.name:
        return None
    name, earlier_fmt = earlier
    stale = output_dir / name
    if not stale.is_file():
        return None
    stale.unlink()
    return (
        f"removed {name} (format {earlier_fmt}) written by an earlier "
        f"session: the dataset is now {dataset.name} (format {fmt})"
    )
