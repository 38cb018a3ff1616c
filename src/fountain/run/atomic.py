"""Files replaced atomically (temporary file + fsync + rename): a reader sees the old file or the
whole new one, never a part."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from fountain import fastjson
from fountain.errors import OutputError


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Replace ``path`` with ``records`` as JSONL (temporary file + fsync + rename)."""
    return write_lines_atomic(path, (fastjson.dumps(record) + "\n" for record in records))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (temporary file + fsync + rename), creating its folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create {path.parent}: {error.strerror or error}",
            location=str(path),
            hint="check the folder's permissions",
        ) from None
    with AtomicFile(path) as out:
        out.write(text)
        return out.commit()


def write_lines_atomic(path: str | Path, lines: Iterable[str | bytes], *, sink: Any = None) -> Path:
    """Replace ``path`` with the given lines (each ending with its newline), streamed to a
    temporary file that is fsynced and then renamed over ``path``: a reader sees the old file or
    the whole new one. ``sink(offset, length)``, when given, is called with each line's position."""
    with AtomicFile(path) as out:
        for line in lines:
            offset = out.write(line)
            if sink is not None:
                sink(offset, out.size - offset)
        return out.commit()


class AtomicFile:
    """A file replaced atomically: :meth:`write` streams to ``.<name>.tmp`` beside it,
    :meth:`commit` fsyncs that and renames it over the path. Leaving the ``with`` block without
    committing (an error) removes the temporary file. Separate from the commit so that several
    files can be written first and replaced together afterwards (and so that the files they were
    made from can be closed before being replaced, which Windows requires)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.size = 0
        try:
            self._handle: Any = open(self.tmp, "wb")  # noqa: SIM115 - a handle that outlives this block, closed by its owner
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> NoReturn:
        self.abort()
        raise OutputError(
            f"cannot write {self.path.name}: {error.strerror or error}",
            location=str(self.path),
            hint="check free disk space and the folder's permissions",
        ) from None

    def write(self, data: str | bytes) -> int:
        """Append ``data``; returns the offset it starts at."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        offset = self.size
        try:
            self._handle.write(data)
        except OSError as error:
            self._fail(error)
        self.size += len(data)
        return offset

    def commit(self) -> Path:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self.tmp, self.path)
        except OSError as error:
            self._fail(error)
        self._handle = None
        return self.path

    def abort(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is None:
            return
        try:
            handle.close()
        except OSError:
            pass
        try:
            self.tmp.unlink()
        except OSError:
            pass

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # nothing left to do after a commit
