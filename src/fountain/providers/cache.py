"""Per-request response cache: SQLite (WAL) keyed by a hash of everything that changes the answer.

A finished run started again makes no provider call; a run killed with ``kill -9`` loses at most
the requests that were in flight, because every answer is committed as soon as it arrives.
Validation and post-processing are *not* part of the key, so changing a validation rule
re-validates cached answers without calling the model again.

The file is shareable between runs and processes (WAL mode, busy timeout): point several output
folders at one cache with ``--cache PATH``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fountain import fastjson
from fountain.errors import OutputError
from fountain.providers.base import Completion, Request, Sampling
from fountain.providers.checkpoint import Checkpointer as _Checkpointer
from fountain.types import Usage

# Bump when the meaning of a key changes: old entries then simply stop matching.
KEY_VERSION = 1
_SCHEMA_VERSION = 1
# How often (seconds, at most) a lookup of a key this process has not seen asks SQLite whether
# another connection wrote since; until one has, such a key is known to be absent without a query.
KNOWN_KEYS_RECHECK_S = 0.05

# Identity entries whose name looks like a credential (or the name of the variable holding one)
# never reach a key, even if an adapter put them in ``identity()`` by mistake.
_SECRET_NAME = re.compile(r"(key|secret|password|passwd|token|authorization|credential|cookie)", re.I)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def public_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` without anything that could be (or name) a secret."""
    return {k: v for k, v in identity.items() if not _SECRET_NAME.search(str(k))}


def canonical_payload(identity: dict[str, Any], request: Request) -> dict[str, Any]:
    """The object whose canonical JSON is hashed into a request's key (reference definition)."""
    return {
        "v": KEY_VERSION,
        "provider": public_identity(identity),
        "messages": [[m.role, m.content] for m in request.messages],
        "schema": request.schema,
        "sampling": request.sampling.to_dict(),
        "sample_index": request.sample_index,
        "seed": request.seed,
    }


class _TextMemo:
    """Canonical JSON of objects reused by every request of a run (the schema, the identity),
    computed once per object. Keyed by ``id`` and checked with ``is``: a run's schema and identity
    dicts are built once and never mutated."""

    def __init__(self, make: Callable[[Any], str], size: int = 64):
        self._make = make
        self._size = size
        self._memo: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        hit = self._memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = self._make(value)
        if len(self._memo) >= self._size:
            self._memo.clear()
        self._memo[id(value)] = (value, text)
        return text


_schema_text = _TextMemo(_canonical)
_identity_text = _TextMemo(lambda identity: _canonical(public_identity(identity)))
# The messages of the last requests, serialised once for the key and reused to store the request.
_messages_text = _TextMemo(
    lambda messages: json.dumps([[m.role, m.content] for m in messages], separators=(",", ":"), ensure_ascii=False),
    size=1024,
)


@lru_cache(maxsize=256)
def _sampling_text(sampling: Sampling) -> str:
    return _canonical(sampling.to_dict())


def _scalar(value: Any) -> str:
    return str(value) if type(value) is int else json.dumps(value)


def request_key(identity: dict[str, Any], request: Request) -> str:
    """sha256 (hex) of the provider identity and everything in ``request`` that changes the answer.

    In the key: provider identity (name, model, endpoint...), sampling parameters, messages,
    JSON schema, ``sample_index`` and ``seed``. Not in the key: ``purpose`` (a log tag), secrets,
    validation or post-processing settings.

    Equal to the sha256 of ``_canonical(canonical_payload(identity, request))``, assembled from
    pieces so the schema and identity are serialised once per run instead of once per request.
    """
    schema = "null" if request.schema is None else _schema_text(request.schema)
    text = "".join(
        (
            '{"messages":',
            _messages_text(request.messages),
            ',"provider":',
            _identity_text(identity),
            ',"sample_index":',
            _scalar(request.sample_index),
            ',"sampling":',
            _sampling_text(request.sampling),
            ',"schema":',
            schema,
            ',"seed":',
            _scalar(request.seed),
            ',"v":',
            str(KEY_VERSION),
            "}",
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """Counters of one :class:`ResponseCache` instance (this process), plus the file's size."""

    path: str
    entries: int
    hits: int
    misses: int
    writes: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ResponseCache:
    """SQLite response cache.

    One connection, used from the event loop thread: each operation is a single indexed read or
    a short write transaction, far cheaper than a hop to a thread executor. Two ways to write:

    - :meth:`put` commits one answer before returning;
    - :meth:`aput` (what the dispatcher uses) joins the answers that arrive in the same event-loop
      tick into one transaction and returns once that transaction is committed: the same
      guarantee for the caller, at a fraction of the cost per answer when many arrive together.

    ``synchronous = NORMAL`` in WAL mode keeps every committed answer across a process crash
    (``kill -9``); only a power loss can drop the last few. The JSON schema of a request is
    stored once per distinct schema, not once per answer.
    """

    def __init__(self, path: str | Path, *, provider_identity: dict[str, Any] | None = None):
        self.path = Path(path)
        self._identity = public_identity(provider_identity or {})
        self._schema_hashes: dict[str, str] = {}  # canonical schema text -> its sha256
        self._stored_schemas: set[str] = set()
        self._pending: dict[str, tuple[tuple[Any, ...], Completion]] = {}
        self._pending_schemas: dict[str, str] = {}
        self._batch: asyncio.Future[None] | None = None
        self._checkpointer: _Checkpointer | None = None
        self._lock = threading.Lock()  # uncontended in the normal single-thread use; cheap
        self.hits = 0
        self.misses = 0
        self.writes = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            # Checkpoints (copying the WAL into the database, with an fsync) run in a background
            # thread on its own connection instead of inside a commit on the event loop.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise OutputError(
                    f"the response cache was written by a newer fountain (cache format {version})",
                    location=str(self.path),
                    hint="upgrade fountain, or use another cache file with --cache PATH",
                )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY,"
                " created REAL NOT NULL,"
                " provider TEXT NOT NULL,"
                " request TEXT NOT NULL,"  # messages, sampling, sample_index, seed, purpose
                " schema_hash TEXT,"  # -> schemas.hash
                " text TEXT NOT NULL,"
                " data TEXT,"
                " finish_reason TEXT,"
                " prompt_tokens INTEGER NOT NULL,"
                " completion_tokens INTEGER NOT NULL,"
                " model TEXT NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS schemas (hash TEXT PRIMARY KEY, schema TEXT NOT NULL)")
            if version < _SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            self._load_known_keys()
        except sqlite3.DatabaseError as error:
            raise OutputError(
                f"cannot open the response cache: {error}",
                location=str(self.path),
                hint="the file is not a fountain cache or is damaged: move it away, or choose "
                "another file with --cache PATH (or --no-cache)",
            ) from None
        except OSError as error:
            raise OutputError(
                f"cannot create the response cache: {error.strerror or error}",
                location=str(self.path),
                hint="choose a writable location with --cache PATH",
            ) from None

    # --- reading --------------------------------------------------------------------------------

    def _load_known_keys(self) -> None:
        """Remember which keys the file holds (the hash of each), so that looking up a
        new key, what almost every request of a fresh run does, needs no query."""
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
        self._known: set[int] | None = {hash(k) for (k,) in self._db.execute("SELECT key FROM responses")}
        self._known_checked = time.monotonic()

    def _surely_absent(self, key: str) -> bool:
        """True when ``key`` is certainly not in the file: neither this process nor the file at
        open had it, and no other connection has written since (``PRAGMA data_version``, asked at
        most every :data:`KNOWN_KEYS_RECHECK_S`). Once another one has (a shared cache, Ray
        actors), every lookup queries the file."""
        known = self._known
        if known is None or hash(key) in known:
            return False
        now = time.monotonic()
        if now - self._known_checked >= KNOWN_KEYS_RECHECK_S:
            self._known_checked = now
            with self._lock:
                version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._known = None
                return False
        return True

    def get(self, key: str) -> Completion | None:
        """The cached completion for ``key``, or None."""
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return pending[1]
        if self._surely_absent(key):
            self.misses += 1
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT text, data, finish_reason, prompt_tokens, completion_tokens, model "
                "FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        text, data, finish_reason, prompt_tokens, completion_tokens, model = row
        return Completion(
            text=text,
            data=json.loads(data) if data is not None else None,
            finish_reason=finish_reason,
            usage=Usage(prompt_tokens, completion_tokens),
            model=model,
        )

    def request_of(self, key: str) -> dict[str, Any] | None:
        """The stored request of ``key`` (messages, schema, sampling...), for auditing."""
        with self._lock:
            row = self._db.execute(
                "SELECT r.request, s.schema FROM responses r LEFT JOIN schemas s "
                "ON s.hash = r.schema_hash WHERE r.key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        record: dict[str, Any] = json.loads(row[0])
        record["schema"] = json.loads(row[1]) if row[1] is not None else None
        return record

    # --- writing --------------------------------------------------------------------------------

    def _row(
        self, key: str, request: Request, completion: Completion, identity: dict[str, Any] | None
    ) -> tuple[Any, ...]:
        who_text = _identity_text(self._identity if identity is None else identity)
        schema_hash = None
        if request.schema is not None:
            text = _schema_text(request.schema)
            schema_hash = self._schema_hashes.get(text)
            if schema_hash is None:
                schema_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
                if len(self._schema_hashes) > 64:
                    self._schema_hashes.clear()
                self._schema_hashes[text] = schema_hash
            if schema_hash not in self._stored_schemas:
                self._pending_schemas[schema_hash] = text
        # messages as [[role, content], ...], as in the key
        record = "".join(
            (
                '{"messages":',
                _messages_text(request.messages),
                ',"sampling":',
                _sampling_text(request.sampling),
                ',"sample_index":',
                _scalar(request.sample_index),
                ',"seed":',
                _scalar(request.seed),
                ',"purpose":',
                json.dumps(request.purpose, ensure_ascii=False),
                "}",
            )
        )
        data = None if completion.data is None else fastjson.dumps(completion.data)
        usage = completion.usage
        return (
            key,
            time.time(),
            who_text,
            record,
            schema_hash,
            completion.text,
            data,
            completion.finish_reason,
            usage.prompt_tokens,
            usage.completion_tokens,
            completion.model or "",
        )

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        schemas = list(self._pending_schemas.items())
        try:
            with self._lock:
                db = self._db
                db.execute("BEGIN")
                try:
                    if schemas:
                        db.executemany("INSERT OR IGNORE INTO schemas VALUES (?, ?)", schemas)
                    db.executemany("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as error:
            raise OutputError(
                f"cannot write to the response cache: {error}",
                location=str(self.path),
                hint="check free disk space, or run with --no-cache",
            ) from None
        for digest, _ in schemas:
            self._stored_schemas.add(digest)
            self._pending_schemas.pop(digest, None)
        known = self._known
        if known is not None:
            known.update(hash(row[0]) for row in rows)
        self.writes += len(rows)
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.dirty.set()

    def put(
        self, key: str, request: Request, completion: Completion, *, identity: dict[str, Any] | None = None
    ) -> None:
        """Store (or replace) an answer; committed before returning.

        ``identity`` (the provider's; secrets are removed) is stored beside it for auditing.
        """
        self._commit([self._row(key, request, completion, identity)])

    async def aput(
        self, key: str, request: Request, completion: Completion, *, identity: dict[str, Any] | None = None
    ) -> None:
        """Like :meth:`put`, committed in one transaction with the other answers of this
        event-loop tick; returns once committed (so a kill after it cannot lose the answer)."""
        self._pending[key] = (self._row(key, request, completion, identity), completion)
        batch = self._batch
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self._batch = loop.create_future()
            loop.call_soon(self._flush_batch)
        # shield: a cancelled caller must not cancel the commit the others are waiting for
        await asyncio.shield(batch)

    def _flush_batch(self) -> None:
        batch = self._batch
        try:
            self.flush()  # resolves the batch
        except Exception as error:  # noqa: BLE001 - every waiter must wake up, whatever went wrong
            self._batch = None
            if batch is not None and not batch.done():
                batch.set_exception(error)
                batch.exception()  # retrieved here too: waiters may all have been cancelled

    def flush(self) -> None:
        """Commit the answers :meth:`aput` is still holding (close() does it too)."""
        if self._pending:
            rows = [row for row, _ in self._pending.values()]
            try:
                self._commit(rows)
            finally:
                self._pending.clear()
        batch, self._batch = self._batch, None
        if batch is not None and not batch.done():
            try:
                batch.set_result(None)
            except RuntimeError:  # its event loop is closed: nobody is waiting any more
                pass

    def __contains__(self, key: str) -> bool:
        if key in self._pending:
            return True
        with self._lock:
            return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        with self._lock:
            stored: int = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return stored + len(self._pending)

    def stats(self) -> CacheStats:
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += Path(str(self.path) + suffix).stat().st_size
            except OSError:
                pass
        return CacheStats(str(self.path), len(self), self.hits, self.misses, self.writes, size)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._checkpointer is not None:
                self._checkpointer.stop()
            with self._lock:
                try:  # leave a compact file behind (best effort: another process may be reading)
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                try:
                    self._db.close()
                except sqlite3.Error:
                    pass

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
