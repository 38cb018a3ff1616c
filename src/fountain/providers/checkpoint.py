"""Background checkpoints of the response cache's WAL (see :mod:`fountain.providers.cache`)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Checkpointer:
    """Background thread that moves committed WAL frames into the database file.

    ``PASSIVE`` checkpoints never block the writer; the event loop keeps committing while the
    copy and its fsync happen here (sqlite3 releases the GIL during I/O).
    """

    INTERVAL_S = 0.5

    def __init__(self, path: Path):
        self.path = path
        self.dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fountain-cache-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while not self._stop.is_set():
                self._stop.wait(self.INTERVAL_S)
                if not self.dirty.is_set():
                    continue
                self.dirty.clear()
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # busy or locked: the next round, or close(), tries again
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
