"""Append-only JSONL journals (seeds.jsonl, derivations.jsonl, rejects.jsonl).

Durability, precisely:

- :meth:`Journal.append` writes the record as one line with a single ``write()`` on a file opened
  with ``O_APPEND`` before it returns. From then on the line is in the operating system's page
  cache: a crash or ``kill -9`` of fountain cannot lose it or tear it.
- With ``fsync=True`` the lines also reach the disk (surviving a power loss or an OS crash) by
  *group commit*: a background thread calls ``fsync`` for all the lines appended since its last
  one, at most every :data:`SYNC_INTERVAL_S`. A power loss can therefore drop the lines of the
  last few milliseconds (and, in the worst case, leave a torn last line); the event loop never
  waits for the disk. :meth:`Journal.sync` and :meth:`Journal.close` wait until every line is on
  disk.

:func:`scan_journal` streams a journal's records with their byte positions (memory does not grow
with the file); :func:`read_journal` returns them all in a list. Both drop a torn last line
(truncating the file so the next append starts on a clean line) and report it; invalid JSON
anywhere else is damage fountain did not cause, and is an :class:`~fountain.errors.OutputError`
naming file:line. :func:`read_record` reads one record back from its position.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, NoReturn

from fountain import fastjson
from fountain.errors import OutputError

# The longest a line appended with fsync=True waits before a background fsync covers it (plus the
# fsync itself). Short enough that a power loss costs a handful of lines (which a resume takes from
# the response cache), long enough that a busy run does one fsync per journal per interval.
SYNC_INTERVAL_S = 0.02


def dumps_record(record: dict[str, Any]) -> str:
    """The one-line JSON text of a record (compact, UTF-8, no ASCII escaping: see
    :mod:`fountain.fastjson`); the same record always gives the same text."""
    return fastjson.dumps(record)


class _Syncer:
    """Background group commit for one journal: fsyncs its file whenever lines were appended since
    the last fsync, at most every ``interval`` seconds (``os.fsync`` releases the GIL)."""

    def __init__(self, fd: int, name: str, interval: float):
        self._fd = fd
        self._interval = interval
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name=f"fountain-journal-sync-{name}", daemon=True)
        self._thread.start()

    def mark(self) -> None:
        if not self._dirty.is_set():  # a plain read while a sync is already due: no lock taken
            self._dirty.set()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._dirty.clear()
            try:
                os.fsync(self._fd)
            except OSError as error:
                self.error = error
                return
            # Group commit: lines appended while we wait share the next fsync.
            if self._stopping.wait(self._interval):
                return

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self._thread.join()


class Journal:
    """An append-only JSONL file (see the module docstring for what is durable when).

    ``append(record)`` returns the ``(offset, length)`` of the line it wrote, which
    :meth:`read` (or :func:`read_record`) reads back.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True, sync_interval: float = SYNC_INTERVAL_S):
        self.path = Path(path)
        self.fsync = fsync
        self.count = 0  # records appended through this object
        self._syncer: _Syncer | None = None
        self._sync_interval = sync_interval
        self._unsynced = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(
                f"cannot open {self.path.name} for writing: {error.strerror or error}",
                location=str(self.path),
                hint="check the output folder's permissions and free space",
            ) from None

    def append(self, record: dict[str, Any]) -> tuple[int, int]:
        """Write one record as one line; returns its ``(offset, length)`` in the file."""
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        syncer = self._syncer
        if syncer is not None and syncer.error is not None:
            self._fail(syncer.error)
        data = fastjson.dumps_bytes(record) + b"\n"
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (rare: signals, full disks) continues
                written += os.write(self._fd, data[written:])
            # With O_APPEND the position after the write is the end of our line, even if another
            # writer appended before it.
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
        except OSError as error:
            self._fail(error)
        self.count += 1
        if self.fsync:
            self._unsynced = True
            if syncer is None:
                syncer = self._syncer = _Syncer(self._fd, self.path.name, self._sync_interval)
            syncer.mark()
        return end - len(data), len(data)

    def _fail(self, error: OSError) -> NoReturn:
        raise OutputError(
            f"cannot append to {self.path.name}: {error.strerror or error}",
            location=str(self.path),
            hint="free some disk space, then run the same command again to resume",
        ) from None

    def read(self, offset: int, length: int) -> dict[str, Any]:
        """The record of the line at ``offset`` (as :meth:`append` returned it)."""
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        return _parse_at(self._fd, self.path, offset, length)

    def sync(self) -> None:
        """Make every line appended so far durable (fsync now, in the calling thread)."""
        if self._fd is not None and self._unsynced:
            self._unsynced = False
            try:
                os.fsync(self._fd)
            except OSError as error:
                raise OutputError(
                    f"cannot write {self.path.name} to disk: {error.strerror or error}",
                    location=str(self.path),
                    hint="check the disk, then run the same command again to resume",
                ) from None

    def close(self) -> None:
        """Stop the background sync, fsync what is left (``fsync=True``) and close the file.

        Never raises for a failed final fsync: the lines are in the page cache (a resume reads
        them), and the engine rewrites every journal with a checked fsync at the end of a run."""
        if self._fd is None:
            return
        if self._syncer is not None:
            self._syncer.stop()
            self._syncer = None
        try:
            if self.fsync and self._unsynced:
                os.fsync(self._fd)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pread(fd: int, length: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # no pread (Windows): these handles are not shared
    chunks = []
    while length > 0:
        chunk = os.read(fd, length)
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _parse_at(fd: int, path: Path, offset: int, length: int) -> dict[str, Any]:
    data = _pread(fd, length, offset)
    if len(data) != length or not data.endswith(b"\n"):
        _changed(path, offset, "not a whole line")
    return _parse(data, path, offset)


class RecordReader:
    """Reads lines and records back by position from a set of journal files.

    The read-only handles are opened at once and kept until :meth:`close`, so the positions are
    those of the files that were there when the reader was made. Close it before replacing one of
    them (:class:`AtomicFile`): Windows refuses to replace an open file. A missing file is opened
    only if it appears later.
    """

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        self._fds: list[int | None] = [self._open(p) for p in self.paths]

    @staticmethod
    def _open(path: Path) -> int | None:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise OutputError(
                f"cannot read {path.name}: {error.strerror or error}",
                location=str(path),
                hint="check the output folder's permissions",
            ) from None

    def line(self, source: int, offset: int, length: int) -> bytes:
        """The bytes of the line at ``offset`` of file number ``source`` (newline included)."""
        fd = self._fds[source]
        if fd is None:
            fd = self._fds[source] = self._open(self.paths[source])
        data = _pread(fd, length, offset) if fd is not None else b""
        if len(data) != length or not data.endswith(b"\n"):
            _changed(self.paths[source], offset, "not a whole line")
        return data

    def record(self, source: int, offset: int, length: int) -> dict[str, Any]:
        """The record of the line at ``offset`` of file number ``source``."""
        return _parse(self.line(source, offset, length), self.paths[source], offset)

    def close(self) -> None:
        fds, self._fds = self._fds, [None] * len(self._fds)
        for fd in fds:
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _changed(path: Path, offset: int, why: str) -> NoReturn:
    raise OutputError(
        f"{path.name} changed under a running fountain: no record at byte {offset} ({why})",
        location=str(path),
        hint="do not edit or rewrite the journals while a run writes them; run the same command again to resume",
    )


def _parse(data: bytes, path: Path, offset: int) -> dict[str, Any]:
    try:
        record = fastjson.loads_exact(data)
    except ValueError as error:
        _changed(path, offset, str(error))
    if not isinstance(record, dict):
        _changed(path, offset, "not a JSON object")
    return record


def read_record(path: str | Path, offset: int, length: int) -> dict[str, Any]:
    """The record of the line at ``offset`` of a journal file (a position from :func:`scan_journal`
    or :meth:`Journal.append`)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise OutputError(
            f"cannot read {path.name}: {error.strerror or error}",
            location=str(path),
            hint="check the output folder's permissions",
        ) from None
    try:
        return _parse_at(fd, path, offset, length)
    finally:
        os.close(fd)


class JournalLine(NamedTuple):
    """One record of a journal: where its line starts, the line's bytes (newline included) and
    the parsed record."""

    offset: int
    raw: bytes
    record: dict[str, Any]


class JournalScan:
    """One streaming pass over a journal: iterate to get a :class:`JournalLine` for every record,
    in file order; afterwards ``torn`` and ``warning`` say whether a torn last line was dropped
    (and, with ``repair``, cut from the file). A missing file has no records."""

    def __init__(self, path: str | Path, *, repair: bool = True):
        self.path = Path(path)
        self.repair = repair
        self.torn = 0
        self.warning: str | None = None
        self.count = 0
        self._used = False

    def __iter__(self) -> Iterator[JournalLine]:
        if self._used:
            raise RuntimeError("a JournalScan is a single pass; scan the journal again")
        self._used = True
        path = self.path
        try:
            handle: IO[bytes] = open(path, "rb")  # noqa: SIM115 - a handle that outlives this block, closed by its owner
        except FileNotFoundError:
            return
        except OSError as error:
            raise OutputError(
                f"cannot read {path.name}: {error.strerror or error}",
                location=str(path),
                hint="check the output folder's permissions",
            ) from None
        tail = b""
        good_end = 0  # byte offset just past the last good line
        with handle:
            size = os.fstat(handle.fileno()).st_size
            offset = 0
            number = 0
            for raw in handle:
                number += 1
                line_end = offset + len(raw)
                if not raw.endswith(b"\n"):
                    tail = raw  # the last line, without its newline: a torn write
                    break
                if not raw.strip():
                    offset = good_end = line_end
                    continue
                try:
                    record = fastjson.loads_exact(raw)
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                except ValueError as error:  # UnicodeDecodeError is a ValueError
                    if line_end >= size:
                        tail = raw  # a whole last line that does not parse: torn as well
                        break
                    raise OutputError(
                        f"{path.name} line {number} is not a valid record ({error})",
                        location=f"{path}:{number}",
                        hint="the file was edited or damaged; fix or remove that line, or "
                        "write to another folder with --output",
                    ) from None
                self.count += 1
                yield JournalLine(offset, raw, record)
                offset = good_end = line_end
        if tail:
            self.torn = 1
            dropped = len(tail) - tail.endswith(b"\n")
            self.warning = f"{path.name}: dropped a torn last line ({dropped} bytes) left by an interrupted write"
            if self.repair:
                try:
                    with open(path, "r+b") as handle:
                        handle.truncate(good_end)
                        handle.flush()
                        os.fsync(handle.fileno())
                except OSError as error:
                    raise OutputError(
                        f"cannot repair {path.name}: {error.strerror or error}",
                        location=str(path),
                        hint="check the output folder's permissions",
                    ) from None


def scan_journal(path: str | Path, *, repair: bool = True) -> JournalScan:
    """A streaming pass over the records of a journal (see :class:`JournalScan`)."""
    return JournalScan(path, repair=repair)


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
    """Every record of a journal, in a list (an empty result when the file does not exist).

    A last line without its newline, or whose JSON does not parse, is a torn write: it is dropped
    and, with ``repair``, cut from the file. Invalid JSON on any other line raises OutputError.
    Use :func:`scan_journal` to stream a large journal instead.
    """
    scan = scan_journal(path, repair=repair)
    result = JournalRead(Path(path))
    result.records = [line.record for line in scan]
    result.torn, result.warning = scan.torn, scan.warning
    return result


# Atomic writers, re-exported: journal users write whole files through the same module.
