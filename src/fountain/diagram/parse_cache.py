"""The parse of a diagram, kept between processes: the same diagram text is not parsed twice.

Lark builds its lexer's regular expressions on the first parse of each process (about a tenth of
a second, most of what loading a spec costs). A run started again on the same spec, the usual
edit-and-run cycle, reads the statements the last parse of that exact text produced instead, and
does not import Lark at all. Only successful parses are kept; the preprocessing before and the
building of the :class:`~fountain.diagram.model.Diagram` after (with their located errors) run
every time.

The cache is a folder in the user's own cache (``$XDG_CACHE_HOME/fountain/diagrams``, as Lark's
grammar cache), one small file per distinct text, named by a hash of the text, the grammar and
:data:`FORMAT`; it is read with an unpickler that builds nothing but the statement shapes
(lists, tuples, text, numbers, :class:`CachedToken`, :class:`~fountain.diagram.model.Attribute`).
A damaged or foreign file is ignored. At most :data:`MAX_FILES` files are kept (at that count
the oldest quarter goes).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

from fountain.diagram.model import Attribute

FORMAT = 1  # bump when the statements' shape (parser._shaper) changes
MAX_FILES = 256


class CachedToken(str):
    """A Lark token as the diagram builder reads it: its text, ``type``, ``line`` and ``column``."""

    type: str
    line: int
    column: int

    def __new__(cls, text: str, type_: str, line: int, column: int) -> CachedToken:
        token = super().__new__(cls, text)
        token.type, token.line, token.column = type_, line, column
        return token

    def __reduce__(self) -> tuple[Any, ...]:
        return (CachedToken, (str(self), self.type, self.line, self.column))


_ALLOWED = {
    ("fountain.diagram.parse_cache", "CachedToken"): CachedToken,
    ("fountain.diagram.model", "Attribute"): Attribute,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a cached parse")
        return found


def plain(value: Any) -> Any:
    """``value`` (parsed statements) with every Lark token turned into a :class:`CachedToken`."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, str) and type(value) is not str:  # a lark Token
        return CachedToken(str(value), value.type, value.line, value.column)  # type: ignore[attr-defined]
    return value


def _folder(lark_cache: str | bool) -> Path | None:
    return Path(lark_cache).parent / "diagrams" if isinstance(lark_cache, str) else None


def _path(folder: Path, text: str, grammar: str) -> Path:
    digest = hashlib.sha256(f"{FORMAT}\0{grammar}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return folder / f"{digest[:40]}.pickle"


def load(lark_cache: str | bool, text: str, grammar: str) -> list[Any] | None:
    """The statements stored for ``text``, or None."""
    folder = _folder(lark_cache)
    if folder is None:
        return None
    try:
        data = _path(folder, text, grammar).read_bytes()
        statements = _Unpickler(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - absent, damaged or foreign: parse again
        return None
    return statements if isinstance(statements, list) else None


def store(lark_cache: str | bool, text: str, grammar: str, statements: list[Any]) -> None:
    """Keep the statements of ``text`` (best effort: a cache that cannot be written is skipped)."""
    folder = _folder(lark_cache)
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        names = [name for name in os.listdir(folder) if name.endswith(".pickle")]
        if len(names) >= MAX_FILES:  # the oldest quarter goes (a listing alone the rest of the time)
            files = sorted((folder / name for name in names), key=lambda p: p.stat().st_mtime)
            for old in files[: len(files) - MAX_FILES * 3 // 4]:
                old.unlink(missing_ok=True)
        path = _path(folder, text, grammar)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(plain(statements), protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
    except Exception:  # noqa: BLE001 - the cache is an optimisation only
        return
