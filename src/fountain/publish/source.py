"""What ``fountain publish`` reads from an output folder: the dataset's records, the manifest, the
spec folder that produced it (when it can be found) and the report's figures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, OutputError
from fountain.run.outputs import DATASET_FILES, MANIFEST_FILE
from fountain.run.review import dropped_ids
from fountain.spec.model import Spec


class PublishError(FountainError):
    """The output folder cannot be published as asked."""


@dataclass
class Source:
    """An output folder ready to publish."""

    folder: Path
    records: list[dict[str, Any]]
    fmt: str  # "messages" | "sharegpt"
    manifest: dict[str, Any] = field(default_factory=dict)
    spec: Spec | None = None
    spec_note: str = ""  # why no spec was found, when it was not
    figures: dict[str, Any] | None = None  # fountain report's figures (None: not computed)

    @property
    def weighted(self) -> bool:
        """True when the records carry per-message ``weight`` (``--prefix-loss mask``)."""
        column = "messages" if self.fmt == "messages" else "conversations"
        return any("weight" in m for r in self.records[:50] for m in r.get(column, ()))


def _read_records(path: Path) -> tuple[list[dict[str, Any]], str]:
    records: list[dict[str, Any]] = []
    fmt = ""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise PublishError(
                    f"line {number} is not JSON ({error})",
                    location=f"{path}:{number}",
                    hint="the dataset was damaged or edited; run `fountain run` again on the same folder to rewrite it",
                ) from None
            kind = "messages" if isinstance(record, dict) and "messages" in record else ""
            kind = kind or ("sharegpt" if isinstance(record, dict) and "conversations" in record else "")
            if not kind or (fmt and kind != fmt):
                raise PublishError(
                    f"line {number} is neither a messages nor a ShareGPT record like the ones before it",
                    location=f"{path}:{number}",
                    hint="publish reads the dataset.jsonl that `fountain run` writes",
                )
            fmt = kind
            records.append(record)
    return records, fmt or "messages"


def _find_spec(folder: Path, manifest: dict[str, Any], spec_folder: str | Path | None) -> tuple[Spec | None, str]:
    from fountain.spec.load import load_spec

    candidates: list[Path] = []
    if spec_folder is not None:
        candidates.append(Path(spec_folder))
    recorded = (manifest.get("spec") or {}).get("folder") if isinstance(manifest.get("spec"), dict) else None
    if recorded:
        candidates.append(Path(recorded))
    candidates.append(folder.parent)
    for candidate in candidates:
        if not (candidate / "setup.yaml").is_file():
            continue
        try:
            return load_spec(candidate), ""
        except FountainError as error:
            if spec_folder is not None:
                raise
            return None, f"the spec at {candidate} no longer loads ({error.message})"
    return None, "no spec folder found (give it with --spec)"


def read_source(output: str | Path, *, spec_folder: str | Path | None = None) -> Source:
    """Read the output folder ``output`` (or a ``dataset.jsonl`` in one)."""
    path = Path(output)
    folder = path.parent if path.is_file() else path
    dataset = path if path.is_file() else folder / DATASET_FILES["messages"]
    if not dataset.is_file():
        janus = folder / DATASET_FILES["janus"]
        hint = (
            "this run wrote the Janus format; run it again with --format messages to publish it"
            if janus.is_file()
            else "give the folder `fountain run` wrote (it holds dataset.jsonl)"
        )
        raise PublishError("no dataset.jsonl to publish", location=str(folder), hint=hint)
    records, fmt = _read_records(dataset)
    # The hand review (fountain studio's Drop, review.jsonl) wins even before a re-export.
    dropped = dropped_ids(folder)
    if dropped:
        records = [r for r in records if (r.get("metadata") or {}).get("id") not in dropped]
    if not records:
        raise PublishError("the dataset is empty", location=str(dataset), hint="nothing to publish yet")
    manifest: dict[str, Any] = {}
    manifest_path = folder / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise OutputError(
                f"{MANIFEST_FILE} cannot be read ({error})", location=str(manifest_path), hint="restore it"
            ) from None
        manifest = loaded if isinstance(loaded, dict) else {}
    spec, note = _find_spec(folder, manifest, spec_folder)
    return Source(folder, records, fmt, manifest, spec, note)


def report_figures(source: Source, *, embed: bool) -> dict[str, Any]:
    """``fountain report --json``'s figures for the folder; embedding metrics only with ``embed``
    (and only where the embedder is installed: the report notes what it skipped)."""
    from fountain.report.build import build_report

    spec = source.spec.folder if source.spec is not None else None
    report = build_report(source.folder, spec=spec, embed=embed, browse=0)
    figures: dict[str, Any] = json.loads(report.to_json())
    return figures
