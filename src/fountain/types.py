"""Frozen value types shared by every stage of a run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

MAX_TOKENS = 100_000_000  # no single request uses more; a larger reported count is clamped


def token_count(value: Any) -> int:
    """A token count read from untrusted data (a server's answer, a cache row, a journal) as a
    sane int: non-numbers, NaN and negatives are 0; anything above :data:`MAX_TOKENS` is clamped."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            return 0
        number = int(value) if abs(value) < 1e18 else MAX_TOKENS
    elif isinstance(value, str) and len(value) <= 20 and value.strip().isdigit():
        number = int(value)
    else:
        return 0
    return min(max(number, 0), MAX_TOKENS)


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user said and what the assistant answered."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Usage:
    """Token usage of one or more requests."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        if not isinstance(data, dict):
            return cls()
        return cls(token_count(data.get("prompt_tokens")), token_count(data.get("completion_tokens")))


@dataclass(frozen=True)
class Provenance:
    """Where a sample came from; written as the record's ``metadata``."""

    kind: str  # "seed" | "derivation" | "variation"
    direction: str
    category: str
    conversation_type: str = "conversation"  # "conversation" | "instruct"
    parent_id: str | None = None
    prefix_turns: int = 0
    provider: str = ""
    model: str = ""
    prompt_hash: str = ""
    usage: Usage = field(default_factory=Usage)
    spec_fingerprint: str = ""
    persona: str | None = None
    iteration: int = 0
    attempt: int = 0
    # The judge's verdict (fountain.raters.judge): scores per criterion, overall, reason; None
    # (and absent from the record) when the run has no judge.
    judge: dict[str, Any] | None = None


# Provenance fields that may be absent: None in Python, "" in a record.
_OPTIONAL_TEXT = ("parent_id", "persona")
_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _asdict(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` (same result), several times faster for dataclasses of scalars and
    nested dataclasses, which is what a record's metadata is (it runs once per record written)."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if type(value) in _SCALARS:
            out[name] = value
        elif is_dataclass(value) and not isinstance(value, type):
            out[name] = _asdict(value)
        else:
            return asdict(obj)  # a container: the generic conversion (it deep-copies)
    return out


@dataclass(frozen=True)
class Sample:
    """A generated conversation with its provenance.

    For a derivation, ``turns`` is the full training conversation: the parent's prefix followed by
    the continuation the model wrote.
    """

    id: str
    turns: tuple[Turn, ...]
    provenance: Provenance
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """OpenAI chat ``messages`` for this conversation."""
        out: list[dict[str, str]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for turn in self.turns:
            out.append({"role": "user", "content": turn.user})
            out.append({"role": "assistant", "content": turn.assistant})
        return out

    def to_record(self) -> dict[str, Any]:
        """The default output record: ``{"messages": [...], "metadata": {...}}``.

        Every record has the same keys with the same JSON types (``parent_id`` and ``persona`` are
        ``""`` when absent, never ``null``), so a reader that infers types from the first records
        (``datasets``, pandas, Arrow) loads any size and any mix of runs.
        """
        meta = _asdict(self.provenance)
        meta["type"] = meta.pop("conversation_type")
        for key in _OPTIONAL_TEXT:
            if meta[key] is None:
                meta[key] = ""
        if meta.get("judge") is None:
            meta.pop("judge", None)
        meta = {"id": self.id, **meta}
        return {"messages": self.messages(), "metadata": meta}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Sample:
        """Inverse of :meth:`to_record` (raises KeyError/TypeError/ValueError on bad input)."""
        meta = dict(record.get("metadata") or {})
        system = None
        users: list[str] = []
        assistants: list[str] = []
        for message in record["messages"]:
            role, content = message["role"], message["content"]
            if role == "system":
                system = content
            elif role == "user":
                users.append(content)
            elif role == "assistant":
                assistants.append(content)
            else:
                raise ValueError(f"unknown role {role!r}")
        if len(users) != len(assistants):
            raise ValueError("user and assistant messages do not pair up")
        sample_id = meta.pop("id", "")
        meta["conversation_type"] = meta.pop("type", "conversation")
        meta["usage"] = Usage.from_dict(meta.get("usage"))
        for key in _OPTIONAL_TEXT:
            if meta.get(key) == "":
                meta[key] = None  # written as "" (stable types), read back as absent
        known = set(Provenance.__dataclass_fields__)
        prov = Provenance(**{k: v for k, v in meta.items() if k in known})
        return cls(sample_id, tuple(Turn(u, a) for u, a in zip(users, assistants)), prov, system)

    def with_id(self, new_id: str) -> Sample:
        return replace(self, id=new_id)
