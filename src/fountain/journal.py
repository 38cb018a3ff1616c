"""Append-only JSONL journals (seeds.jsonl, derivations.jsonl, rejects.jsonl).

A record is written with a single ``write()`` of one line (trailing newline included) on a file
opened with ``O_APPEND``, then flushed to disk with ``fsync``: after a crash a record is either
wholly there or is the torn last line. :func:`read_journal` drops a torn last line (truncating the
file so the next append starts on a clean line) and reports it; invalid JSON anywhere else is
damage fountain did not cause, and is an :class:`~fountain.errors.OutputError` naming file:line.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from fountain.errors import OutputError


def dumps_record(record: dict[str, Any]) -> str:
    """The one-line JSON text of a record (UTF-8, no ASCII escaping, stable separators)."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


class Journal:
    """An append-only JSONL file. ``append(record)`` is durable when it returns (``fsync=True``)."""

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.count = 0  # records appended through this object
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"cannot open {self.path.name} for writing: {error.strerror or error}",
                              location=str(self.path),
                              hint="check the output folder's permissions and free space") from None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line."""
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        data = (dumps_record(record) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (rare: signals, full disks) continues
                written += os.write(self._fd, data[written:])
            if self.fsync:
                os.fsync(self._fd)
        except OSError as error:
            raise OutputError(f"cannot append to {self.path.name}: {error.strerror or error}",
                              location=str(self.path),
                              hint="free some disk space, then run the same command again to resume") from None
        self.count += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class JournalRead:
    """What :func:`read_journal` found: the records, and whether a torn last line was dropped."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: int = 0  # 1 when a torn last line was dropped
    warning: str | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def read_journal(path: str | Path, *, repair: bool = True) -> JournalRead:
    """Every record of a journal (an empty result when the file does not exist).

    A last line without its newline, or whose JSON does not parse, is a torn write: it is dropped
    and, with ``repair``, cut from the file. Invalid JSON on any other line raises OutputError.
    """
    path = Path(path)
    result = JournalRead(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return result
    except OSError as error:
        raise OutputError(f"cannot read {path.name}: {error.strerror or error}", location=str(path),
                          hint="check the output folder's permissions") from None
    if not data:
        return result
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail is b"" when the file ends with a newline
    good_end = 0  # byte offset just past the last good line
    offset = 0
    for number, raw in enumerate(complete, 1):
        line_end = offset + len(raw) + 1
        is_last = number == len(complete) and not tail
        if not raw.strip():
            offset = good_end = line_end
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as error:
            if is_last:
                tail = raw  # a whole last line that does not parse: torn as well
                break
            raise OutputError(f"{path.name} line {number} is not a valid record ({error})",
                              location=f"{path}:{number}",
                              hint="the file was edited or damaged; fix or remove that line, or "
                                   "write to another folder with --output") from None
        result.records.append(record)
        offset = good_end = line_end
    if tail:
        result.torn = 1
        result.warning = (f"{path.name}: dropped a torn last line ({len(tail)} bytes) left by an "
                          "interrupted write")
        if repair:
            try:
                with open(path, "r+b") as handle:
                    handle.truncate(good_end)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as error:
                raise OutputError(f"cannot repair {path.name}: {error.strerror or error}",
                                  location=str(path), hint="check the output folder's permissions") from None
    return result


def write_jsonl_atomic(path: str | Path, records: Any) -> Path:
    """Replace ``path`` with ``records`` as JSONL (temporary file + fsync + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(dumps_record(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise OutputError(f"cannot write {path.name}: {error.strerror or error}", location=str(path),
                          hint="check free disk space and the folder's permissions") from None
    return path
