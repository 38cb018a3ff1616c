"""Hand review of a dataset: ``review.jsonl`` in an output folder.

Each line is one decision, ``{"id": <sample id>, "decision": "keep"|"drop", "at": <ISO time>}``;
the file is only appended to and the last decision about an id wins. The journals are never
rewritten: the exporter (and ``fountain publish``) leave a dropped id out of the dataset.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from fountain.errors import OutputError

REVIEW_FILE = "review.jsonl"
DECISIONS = ("keep", "drop")


def load_review(output_dir: str | Path) -> dict[str, str]:
    """``{sample id: "keep"|"drop"}`` from ``<output_dir>/review.jsonl``; empty when there is none.

    Lines that are not a decision (a torn last line of an interrupted write, a hand edit gone
    wrong) are skipped: a review can only ever drop records that were named exactly."""
    path = Path(output_dir) / REVIEW_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise OutputError(
            f"cannot read the review file: {error.strerror or error}",
            location=str(path),
            hint="check its permissions, or move it away to export without the hand review",
        ) from None
    decisions: dict[str, str] = {}
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        sample_id, decision = entry.get("id"), entry.get("decision")
        if isinstance(sample_id, str) and sample_id and decision in DECISIONS:
            decisions[sample_id] = decision
    return decisions


def dropped_ids(output_dir: str | Path) -> frozenset[str]:
    """The ids the review drops (the last decision about each is ``drop``)."""
    return frozenset(i for i, d in load_review(output_dir).items() if d == "drop")


def append_decision(output_dir: str | Path, sample_id: str, decision: str) -> dict[str, str]:
    """Append one decision to ``review.jsonl`` (created when missing); returns the line's record.

    One ``write`` of a whole line on a file opened for appending: concurrent writers do not
    interleave, and a crash leaves at most a torn last line, which :func:`load_review` skips."""
    if decision not in DECISIONS:
        raise OutputError(f"unknown review decision {decision!r}", hint="one of: keep, drop")
    if not isinstance(sample_id, str) or not sample_id or "\n" in sample_id:
        raise OutputError("a review decision needs the id of a record", hint="ids look like s-1c0a982b7cf7b961")
    record = {"id": sample_id, "decision": decision, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = Path(output_dir) / REVIEW_FILE
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        # A torn last line (no newline) would swallow this one: start on a fresh line.
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            line = b"\n" + line
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as error:
        raise OutputError(
            f"cannot write the review file: {error.strerror or error}",
            location=str(path),
            hint="check that the output folder is writable",
        ) from None
    return record
