"""Dataset writers: OpenAI ``messages`` JSONL (default), ShareGPT JSONL, and the original Janus
``outputs.json``. Every file is written to a temporary name and renamed, so a reader never sees a
half-written dataset.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from fountain.errors import OutputError
from fountain.journal import write_jsonl_atomic
from fountain.types import Sample

FORMATS = ("messages", "sharegpt", "janus")
DATASET_FILES = {"messages": "dataset.jsonl", "sharegpt": "dataset.jsonl", "janus": "outputs.json"}


def _with_system(sample: Sample, system: str | None) -> Sample:
    if system and not sample.system:
        from dataclasses import replace

        return replace(sample, system=system)
    return sample


def messages_record(sample: Sample, system: str | None = None) -> dict[str, Any]:
    """``{"messages": [{"role", "content"}...], "metadata": {...}}`` (TRL, Axolotl, LLaMA-Factory)."""
    return _with_system(sample, system).to_record()


def sharegpt_record(sample: Sample, system: str | None = None) -> dict[str, Any]:
    """``{"conversations": [{"from": "system"|"human"|"gpt", "value"}...], "metadata": {...}}``."""
    record = _with_system(sample, system).to_record()
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in record["messages"]],
            "metadata": record["metadata"]}


def janus_record(sample: Sample) -> dict[str, Any]:
    """One entry of the original ``outputs.json``: the turns, type, category and model."""
    prov = sample.provenance
    return {"conversations": [{"user": t.user, "assistant": t.assistant} for t in sample.turns],
            "type": prov.conversation_type, "category": prov.category, "model": prov.model}


def export_dataset(samples: Iterable[Sample], folder: str | Path, fmt: str = "messages", *,
                   system_message: str | None = None) -> Path:
    """Write the dataset of ``samples`` into ``folder`` in format ``fmt``; returns the file's path.

    ``messages`` and ``sharegpt`` write ``dataset.jsonl``; ``janus`` writes ``outputs.json``.
    ``system_message`` is added as the first message of every conversation that has none.
    """
    if fmt not in FORMATS:
        raise OutputError(f"unknown output format {fmt!r}", location="--format",
                          hint=f"one of {', '.join(FORMATS)}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the output folder: {error.strerror or error}",
                          location=str(folder), hint="choose a writable folder with --output") from None
    path = folder / DATASET_FILES[fmt]
    if fmt == "messages":
        return write_jsonl_atomic(path, (messages_record(s, system_message) for s in samples))
    if fmt == "sharegpt":
        return write_jsonl_atomic(path, (sharegpt_record(s, system_message) for s in samples))
    # The original wrote one indented JSON list.
    text = json.dumps([janus_record(s) for s in samples], ensure_ascii=False, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise OutputError(f"cannot write {path.name}: {error.strerror or error}", location=str(path),
                          hint="check free disk space and the folder's permissions") from None
    return path


def record_validator():
    """A jsonschema validator for ``schemas/sft_record.schema.json`` (the ``messages`` record)."""
    from jsonschema import Draft202012Validator

    from fountain.resources import load_schema

    return Draft202012Validator(load_schema("sft_record.schema.json"))
