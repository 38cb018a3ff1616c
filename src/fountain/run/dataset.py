"""Reading what a run wrote: the exported dataset's records and the accepted samples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fountain.errors import OutputError
from fountain.run.journal import scan_journal
from fountain.run.outputs import DATASET_FILES, DERIVATIONS_FILE, SEEDS_FILE
from fountain.types import Sample


def dataset_path(output: str | Path) -> Path:
    """The dataset file of an output folder (the one its manifest names), or ``output`` itself."""
    from fountain.run.manifest import Manifest

    path = Path(output)
    if not path.is_dir():
        return path
    manifest = Manifest.read(path)
    exported = manifest.exported_dataset() if manifest is not None else None
    name = exported[0] if exported else DATASET_FILES["messages"]
    return path / name


def read_dataset(output: str | Path) -> list[dict[str, Any]]:
    """The records of a run's exported dataset (``dataset.jsonl`` in the messages or sharegpt
    format, or a Janus ``outputs.json``), given the output folder or the file."""
    path = dataset_path(output)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OutputError(
            f"cannot read the dataset: {error.strerror or error}",
            location=str(path),
            hint="give an output folder of `fountain run` or its dataset file",
        ) from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
            return list(data) if isinstance(data, list) else [data]
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as error:
        raise OutputError(f"the dataset is not valid JSON ({error})", location=str(path)) from None


def read_samples(output_dir: str | Path) -> Iterator[Sample]:
    """Every accepted sample of an output folder (seeds, then derivations), with provenance,
    streamed from the journals (before rating: dedup and raters may have left some out of the
    dataset)."""
    for name in (SEEDS_FILE, DERIVATIONS_FILE):
        for line in scan_journal(Path(output_dir) / name, repair=False):
            yield Sample.from_record(line.record)
