"""Write a publishable dataset folder: ``data/train.jsonl`` and ``data/test.jsonl``, the card
(``README.md``), a LLaMA-Factory ``dataset_info.json`` and an Axolotl ``axolotl.yaml``.

``datasets.load_dataset(FOLDER)`` reads it as it is (the card's ``configs`` names the split files
and ``dataset_info.features`` their types); the same folder is what ``hf://`` pushes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.publish.card import SPLIT_FILES, CardOptions, render_card
from fountain.publish.recipes import axolotl_config, dataset_name, llamafactory_json
from fountain.publish.source import PublishError, Source
from fountain.publish.splits import DEFAULT_THRESHOLD, split_records
from fountain.run.atomic import write_jsonl_atomic, write_text_atomic
from fountain.run.export import prefix_length, weigh_messages

CARD_FILE, LLAMAFACTORY_FILE, AXOLOTL_FILE = "README.md", "dataset_info.json", "axolotl.yaml"
PUBLISHED = (CARD_FILE, LLAMAFACTORY_FILE, AXOLOTL_FILE, *SPLIT_FILES.values())


@dataclass
class PublishOptions:
    """How to publish (the card's own options are in ``card``)."""

    test_size: float = 0.1
    seed: int = 0
    threshold: float = DEFAULT_THRESHOLD
    prefix_loss: str | None = None  # None: as exported; "mask": add weights; "keep": strip them
    card: CardOptions = field(default_factory=CardOptions)


@dataclass
class Published:
    """What was written."""

    folder: Path
    files: list[str]
    counts: dict[str, int]
    split: dict[str, Any]


def normalise(record: dict[str, Any], fmt: str, prefix_loss: str | None) -> dict[str, Any]:
    """A record with the stable types of today's exporter (older outputs wrote ``null`` for an
    absent parent or persona) and the weights ``prefix_loss`` asks for."""
    meta = dict(record.get("metadata") or {})
    for key in ("parent_id", "persona"):
        if meta.get(key) is None:
            meta[key] = ""
    column = "messages" if fmt == "messages" else "conversations"
    messages = list(record.get(column) or [])
    if prefix_loss == "mask":
        key = "role" if fmt == "messages" else "from"
        messages = weigh_messages(messages, prefix_length({"metadata": meta}), key=key)
    elif prefix_loss == "keep":
        messages = [{k: v for k, v in m.items() if k != "weight"} for m in messages]
    return {**record, column: messages, "metadata": meta}


def check_target(folder: Path, source: Source) -> None:
    resolved = folder.resolve()
    if resolved == source.folder.resolve() or source.folder.resolve() in resolved.parents:
        raise PublishError(
            "the publish folder lies inside the output folder",
            location=str(folder),
            hint="choose a folder outside it: --to ../my-dataset",
        )
    if folder.exists() and not folder.is_dir():
        raise PublishError("is a file, not a folder", location=str(folder), hint="choose a new folder with --to")
    if folder.is_dir():
        known = {Path(p).parts[0] for p in PUBLISHED} | {".git", ".gitattributes", ".cache"}
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in known)
        if foreign:
            raise PublishError(
                f"the folder holds files publish did not write ({', '.join(foreign[:3])})",
                location=str(folder),
                hint="publish into an empty folder or one an earlier publish wrote",
            )


def write_folder(source: Source, folder: str | Path, options: PublishOptions) -> Published:
    """Split ``source``'s records and write the dataset folder."""
    folder = Path(folder)
    check_target(folder, source)
    records = [normalise(r, source.fmt, options.prefix_loss) for r in source.records]
    if options.prefix_loss is not None:
        source.records = records  # the card declares the weights the files now have
    split = split_records(records, options.test_size, seed=options.seed, threshold=options.threshold)
    parts = {"train": split.train, "test": split.test}
    counts = {name: len(indices) for name, indices in parts.items() if indices}
    summary = {**split.summary(), "threshold": options.threshold, "test_size": options.test_size, "seed": options.seed}
    card = options.card
    card.split_counts, card.split_summary = counts, summary
    try:
        (folder / "data").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PublishError(
            f"cannot create the folder: {error.strerror or error}",
            location=str(folder),
            hint="choose a writable folder",
        ) from None
    written = []
    for name, indices in parts.items():
        path = folder / SPLIT_FILES[name]
        if indices:
            write_jsonl_atomic(path, (records[i] for i in indices))
            written.append(SPLIT_FILES[name])
        elif path.exists():
            path.unlink()  # an earlier publish's split that this one no longer has
    evaluation = source.folder / "evaluation.json"
    if card.evaluation is None and evaluation.is_file():
        try:
            card.evaluation = json.loads(evaluation.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            card.evaluation = None
    write_text_atomic(folder / CARD_FILE, render_card(source, card))
    title = card.pretty_name or (source.spec.category if source.spec is not None else "fountain dataset")
    write_text_atomic(folder / LLAMAFACTORY_FILE, llamafactory_json(dataset_name(title), source.fmt, list(counts)))
    where = card.repo_id or str(folder.resolve())
    write_text_atomic(
        folder / AXOLOTL_FILE, axolotl_config(where, source.fmt, weighted=source.weighted, splits=list(counts))
    )
    written += [CARD_FILE, LLAMAFACTORY_FILE, AXOLOTL_FILE]
    return Published(folder, written, counts, summary)
