"""Read what a report measures: an output folder, or a single dataset file.

An output folder (see ``docs/architecture.md``) holds ``dataset.jsonl`` or ``outputs.json`` (the
final dataset), ``seeds.jsonl`` / ``derivations.jsonl`` (accepted samples with provenance),
``rejects.jsonl`` and ``manifest.json``. Every file is optional except that some conversations
must be found; what is missing is listed in :attr:`Dataset.notes` instead of failing.

Records may be in any format fountain writes: OpenAI ``messages``, ShareGPT
``conversations: [{from, value}]`` or the original Janus ``conversations: [{user, assistant}]``.
Records of a dataset file without provenance (ShareGPT without metadata, Janus) get it from the
journals when a journal holds the same conversation (matched on normalised text).

Nothing here writes: a torn last line of a journal is skipped, never repaired.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.errors import FountainError
from fountain.run.outputs import DATASET_FILES, DERIVATIONS_FILE, MANIFEST_FILE, REJECTS_FILE, SEEDS_FILE
from fountain.types import Turn


class ReportError(FountainError):
    """The path given to ``fountain report`` holds nothing a report can read."""


USER_ROLES = {"user", "human"}
ASSISTANT_ROLES = {"assistant", "gpt", "model", "chatgpt", "bot"}
SYSTEM_ROLES = {"system"}
DATASET_NAMES = (DATASET_FILES["messages"], DATASET_FILES["janus"], "dataset.json")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Item:
    """One conversation: ``messages`` as (role, content) pairs with roles normalised to
    ``system`` / ``user`` / ``assistant``, and its provenance (``metadata``, maybe empty)."""

    id: str
    messages: tuple[tuple[str, str], ...]
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def texts(self, role: str) -> list[str]:
        return [content for r, content in self.messages if r == role]

    @property
    def turns(self) -> tuple[Turn, ...]:
        """User/assistant exchanges, paired in order (a missing side is an empty string)."""
        users, assistants = self.texts("user"), self.texts("assistant")
        count = max(len(users), len(assistants))
        users += [""] * (count - len(users))
        assistants += [""] * (count - len(assistants))
        return tuple(Turn(u, a) for u, a in zip(users, assistants))

    @property
    def text(self) -> str:
        """User and assistant contents, one message per line (no system prompt, no role tags)."""
        return "\n".join(content for role, content in self.messages if role != "system")

    @property
    def kind(self) -> str | None:
        return _label(self.metadata.get("kind"))

    @property
    def direction(self) -> str | None:
        return _label(self.metadata.get("direction"))

    def key(self) -> str:
        """Hash of the normalised user/assistant text: how dataset rows meet journal rows."""
        text = _SPACE.sub(" ", self.text.casefold()).strip()
        return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass
class Dataset:
    """Everything read from the path given to the report."""

    path: Path
    source: Path  # the file the conversations were read from (a journal when there is no dataset)
    format: str  # messages | sharegpt | janus | journals
    items: list[Item]
    manifest: dict[str, Any] | None = None
    rejects: list[dict[str, Any]] | None = None  # None: no rejects.jsonl
    journal_counts: dict[str, int] | None = None  # {"seed": n, "derivation": n} or None
    journal_items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent


def _label(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def load_dataset(path: str | Path) -> Dataset:
    """Read an output folder or one dataset file (JSONL or a JSON array); raise ReportError."""
    path = Path(path)
    if not path.exists():
        raise ReportError(
            "no such file or folder",
            location=str(path),
            hint="give an output folder (e.g. SPEC/output) or a dataset file",
        )
    if path.is_file():
        items, fmt, notes = read_records_file(path)
        if not items:
            raise ReportError(
                "the file holds no conversation",
                location=str(path),
                hint="expected JSONL records with 'messages' or 'conversations', or a Janus outputs.json array",
            )
        return Dataset(path, path, fmt, items, notes=notes)
    return _load_folder(path)


def _load_folder(folder: Path) -> Dataset:
    notes: list[str] = []
    manifest = _read_manifest(folder / MANIFEST_FILE, notes)

    journal_items: list[Item] = []
    journal_counts: dict[str, int] | None = None
    for name, kind in ((SEEDS_FILE, "seed"), (DERIVATIONS_FILE, "derivation")):
        file = folder / name
        if not file.is_file():
            continue
        records = _read_jsonl(file, notes)
        parsed = _items_from(records, file, notes)[0]
        for item in parsed:
            item.metadata.setdefault("kind", kind)
        journal_items += parsed
        journal_counts = (journal_counts or {}) | {kind: len(parsed)}
    if journal_counts is None:
        notes.append("no seeds.jsonl / derivations.jsonl: accepted counts come from the manifest only")

    rejects = None
    if (folder / REJECTS_FILE).is_file():
        rejects = _read_jsonl(folder / REJECTS_FILE, notes)
    else:
        notes.append("no rejects.jsonl: rejections by reason come from the manifest only")
    if manifest is None:
        notes.append(
            "no manifest.json: requested counts, cost, provider retries and the privacy ledger are not reported"
        )

    named = (
        ((manifest or {}).get("output") or {}).get("dataset")
        if isinstance((manifest or {}).get("output"), dict)
        else None
    )
    names = ([str(named)] if named else []) + list(DATASET_NAMES)
    source = next((folder / name for name in names if (folder / name).is_file()), None)
    if source is not None:
        items, fmt, file_notes = read_records_file(source)
        notes += file_notes
        items = _attach_provenance(items, journal_items)
    elif journal_items:
        notes.append(
            "no dataset.jsonl / outputs.json (the run has not exported yet): the report "
            "covers the accepted samples of seeds.jsonl and derivations.jsonl"
        )
        items, fmt, source = list(journal_items), "journals", folder / SEEDS_FILE
    elif journal_counts is not None or rejects or manifest is not None:
        # A run that kept nothing: its counts and rejections are what the user needs to see.
        items, fmt, source = [], "journals", folder / SEEDS_FILE
    else:
        raise ReportError(
            "no conversations found in this folder",
            location=str(folder),
            hint="expected dataset.jsonl, outputs.json, seeds.jsonl or derivations.jsonl "
            "(an output folder of `fountain run`), or pass a dataset file",
        )
    if not items:
        notes.append(
            f"the dataset is empty: {source.name} holds no conversation; the counts and "
            "rejections below say why (rejects.jsonl has each one)"
        )
    return Dataset(
        folder,
        source,
        fmt,
        items,
        manifest=manifest,
        rejects=rejects,
        journal_counts=journal_counts,
        journal_items=journal_items,
        notes=notes,
    )


def _read_manifest(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        notes.append(f"manifest.json could not be read ({error}); its figures are skipped")
        return None
    if not isinstance(data, dict):
        notes.append("manifest.json is not a JSON object; its figures are skipped")
        return None
    return data


def _read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    from fountain.run.journal import read_journal

    # repair=False: a report never writes into the folder it reads.
    read = read_journal(path, repair=False)
    if read.warning:
        notes.append(read.warning)
    return list(read.records)


def read_records_file(path: Path) -> tuple[list[Item], str, list[str]]:
    """Conversations of a JSONL file or a JSON array file, their format and notes."""
    notes: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ReportError(
            f"not UTF-8 text (byte {error.start})", location=str(path), hint="save the file as UTF-8"
        ) from None
    except OSError as error:
        raise ReportError(f"cannot read the file: {error.strerror or error}", location=str(path)) from None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except ValueError as error:
            raise ReportError(
                f"not valid JSON ({error})",
                location=str(path),
                hint="a dataset file is JSONL, or one JSON array of records",
            ) from None
    else:
        records = []
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as error:
                if number == len(lines):
                    notes.append(f"{path.name}: skipped a torn last line")
                    continue
                # JSONDecodeError has .msg; other ValueErrors (e.g. an integer over the digit limit) have not
                reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
                raise ReportError(
                    f"line {number} is not valid JSON ({reason})",
                    location=f"{path}:{number}",
                    hint="JSONL needs one complete JSON object per line",
                ) from None
    items, fmt = _items_from(records, path, notes)
    return items, fmt, notes


def _items_from(records: Iterable[Any], path: Path, notes: list[str]) -> tuple[list[Item], str]:
    items: list[Item] = []
    formats: dict[str, int] = {}
    skipped = 0
    for index, record in enumerate(records):
        parsed = parse_record(record, default_id=f"{path.stem}:{index + 1}")
        if parsed is None:
            skipped += 1
            continue
        item, fmt = parsed
        items.append(item)
        formats[fmt] = formats.get(fmt, 0) + 1
    if skipped:
        notes.append(f"{path.name}: skipped {skipped} record(s) that are not conversations")
    fmt = max(formats, key=formats.__getitem__) if formats else "messages"
    return items, fmt


def parse_record(record: Any, default_id: str = "") -> tuple[Item, str] | None:
    """One record in any supported format as an :class:`Item` and the format's name, or None."""
    if not isinstance(record, dict):
        return None
    metadata = record.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    found = _role_pairs(record, metadata)
    if found is None:
        return None
    fmt, pairs = found
    messages = _messages(pairs)
    if not any(role != "system" for role, _ in messages):
        return None
    item_id = str(metadata.get("id") or record.get("id") or default_id)
    return Item(item_id, tuple(messages), metadata), fmt


def _role_pairs(record: dict[str, Any], metadata: dict[str, Any]) -> tuple[str, list[tuple[Any, Any]]] | None:
    """The record's format and its (role, content) pairs as written, or None for no conversation.
    A Janus record's type/category/model go into ``metadata`` (the original kept them beside the
    conversation)."""
    if isinstance(record.get("messages"), list):
        return "messages", [(m.get("role"), m.get("content")) for m in record["messages"] if isinstance(m, dict)]
    if not (isinstance(record.get("conversations"), list) or isinstance(record.get("conversation"), dict)):
        return None
    entries = record.get("conversations")
    if entries is None:  # the instruct output format of the original: one exchange
        entries = [record["conversation"]]
    if entries and all(isinstance(e, dict) and "from" in e for e in entries):
        return "sharegpt", [(e.get("from"), e.get("value")) for e in entries]
    pairs: list[tuple[Any, Any]] = []
    for entry in entries:
        if isinstance(entry, dict):
            pairs += [("user", entry.get("user")), ("assistant", entry.get("assistant"))]
    for key in ("type", "category", "model"):
        if key in record and key not in metadata:
            metadata[key] = record[key]
    return "janus", pairs


def _messages(pairs: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    """(role, text) pairs with the role named user, assistant or system; anything else left out."""
    messages = []
    for role, content in pairs:
        role = str(role or "").casefold()
        if not isinstance(content, str):
            continue
        if role in USER_ROLES:
            messages.append(("user", content))
        elif role in ASSISTANT_ROLES:
            messages.append(("assistant", content))
        elif role in SYSTEM_ROLES:
            messages.append(("system", content))
    return messages


def _attach_provenance(items: list[Item], journal_items: list[Item]) -> list[Item]:
    """Give dataset rows without provenance the metadata (and id) of the journal row with the
    same text."""
    if not journal_items or all(item.metadata.get("kind") for item in items):
        return items
    by_key = {item.key(): item for item in journal_items}
    out = []
    for item in items:
        found = by_key.get(item.key())
        if found is not None and not item.metadata.get("kind"):
            item = Item(found.id, item.messages, {**found.metadata, **item.metadata})
        out.append(item)
    return out


def load_real(path: str | Path) -> list[Item]:
    """Real conversations for comparison, through :func:`fountain.raters.realdata.load_real_data`.

    Duplicates are allowed here (the report only measures; PE is where they matter) and records
    without a category are accepted.
    """
    try:
        from fountain.raters.realdata import load_real_data
    except ImportError:  # pragma: no cover - realdata ships with fountain
        items, _, _ = read_records_file(Path(path))
        return items
    conversations = load_real_data(path, default_category="(none)", allow_duplicates=True)
    items = []
    for index, conversation in enumerate(conversations):
        messages: list[tuple[str, str]] = []
        for turn in conversation.turns:
            messages += [("user", turn.user), ("assistant", turn.assistant)]
        items.append(Item(f"real:{index + 1}", tuple(messages), {"category": conversation.category}))
    return items
