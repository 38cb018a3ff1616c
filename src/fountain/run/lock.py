"""One run per output folder: an advisory lock (flock) on ``<output>/.lock``, held for the whole run."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fountain.errors import OutputError
from fountain.run.outputs import LOCK_FILE

LOCK_NAME = LOCK_FILE

# --- one run per output folder --------------------------------------------------------------------

# Locks this process holds: real path of the folder -> [file descriptor, depth, owning thread].
_LOCKS: dict[str, list[Any]] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def output_lock(output_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive advisory lock of ``output_dir`` (``flock`` on ``<output>/.lock``) for a run.

    Another process (or thread) running in the folder makes this fail at once with an
    :class:`~fountain.errors.OutputError` naming its pid. Re-entrant in the thread that holds it
    (the CLI holds it around a framework whose rounds take it again). The kernel drops the lock
    when the process dies, even by ``kill -9``, so a resume is never blocked by a stale lock. The
    file stays in place: deleting it would let two runs lock two different files.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): runs are not guarded against each other
        yield Path(output_dir)
        return
    folder = Path(output_dir)
    path = folder / LOCK_NAME
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = str(folder.resolve())
    except OSError as error:
        raise OutputError(
            f"cannot create the output folder: {error.strerror or error}",
            location=str(folder),
            hint="check the path and its permissions",
        ) from None
    me = threading.get_ident()
    with _LOCKS_GUARD:
        held = _LOCKS.get(key)
        if held is not None and held[2] == me:
            held[1] += 1
            fd = None
        elif held is not None:
            raise OutputError(
                f"another fountain run is using {folder} (pid {os.getpid()}, another thread)",
                location=str(folder),
                hint="wait for it to finish, or write this run elsewhere with --output",
            )
        else:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OutputError(
                    f"cannot create the lock file: {error.strerror or error}",
                    location=str(path),
                    hint="check the folder's permissions",
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A run that gave up on a folder it had just created removes the lock file
                # (below); one that opened that file before it went must not run on it.
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    raise OSError("the lock file was replaced")
            except OSError:
                try:
                    other = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                finally:
                    os.close(fd)
                raise OutputError(
                    f"another fountain run is using {folder} (pid {other})",
                    location=str(folder),
                    hint="wait for it to finish (or stop it), or write this run elsewhere with --output",
                ) from None
            # The pid is only informative: the lock itself is the flock, not the file's content.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            _LOCKS[key] = [fd, 1, me]
    try:
        yield folder
    finally:
        with _LOCKS_GUARD:
            held = _LOCKS[key]
            held[1] -= 1
            if held[1] == 0:
                del _LOCKS[key]
                # A run that stopped before writing anything (a missing --replay file, an
                # unknown HTTP client...) leaves no empty folder behind it. The file goes while
                # the lock is still held, so no other run can take a lock on the removed file.
                unused = created and _only_lock_file(folder)
                if unused:
                    _remove_quietly(path.unlink)
                os.close(held[0])  # closing the descriptor releases the flock
                if unused:
                    _remove_quietly(folder.rmdir)


def _only_lock_file(folder: Path) -> bool:
    try:
        return [entry.name for entry in os.scandir(folder)] == [LOCK_NAME]
    except OSError:
        return False


def _remove_quietly(remove: Any) -> None:
    try:
        remove()
    except OSError:  # another run created something meanwhile: it is theirs to keep
        pass
