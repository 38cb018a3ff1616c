"""``manifest.json``: what made an output folder and what the run has done so far.

It records the fountain version, the spec version (fingerprint, the fields it is made of, and the
git commit of the spec folder with whether it had uncommitted changes), provider and model,
counts, token usage, cost, timings, the history of every start and resume, and the privacy ledger.
It is rewritten atomically (temporary file + rename), so a crash leaves the old or the new one.

:func:`check_resume` decides whether a run may start in, or resume, an output folder. One output
folder only ever holds one spec version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain import __version__
from fountain.errors import OutputError
from fountain.run.atomic import write_text_atomic
from fountain.run.outputs import MANIFEST_FILE
from fountain.safety import safe_text

MANIFEST_NAME = MANIFEST_FILE

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

FORMAT_VERSION = 1
RESUME_MODES = ("if-compatible", "always", "never")
# Files whose presence means a run already wrote into a folder (besides the manifest).
RUN_FILE_SUFFIXES = (".jsonl",)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Manifest:
    """The content of ``manifest.json``. Unknown keys read from a file are kept (``extra``)."""

    spec_fingerprint: str
    spec_fields: dict[str, Any] = field(default_factory=dict)
    spec_folder: str = ""
    git: dict[str, Any] | None = None  # {"commit": ..., "dirty": ...} or None without git
    provider: dict[str, Any] = field(default_factory=dict)  # identity: provider, model, endpoint
    fountain_version: str = __version__
    format: int = FORMAT_VERSION
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    status: str = "running"  # running | completed | stopped | failed
    stop_reason: str | None = None
    counts: dict[str, Any] = field(
        default_factory=lambda: {
            "seeds_requested": 0,
            "derivations_planned": 0,
            "accepted": {"seed": 0, "derivation": 0},
            "rejected": {},
        }
    )
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    cost_usd: float = 0.0
    cost_complete: bool = True  # False when some model had no known price
    timings: dict[str, float] = field(default_factory=lambda: {"elapsed_s": 0.0})
    runs: list[dict[str, Any]] = field(default_factory=list)  # each start / resume
    # The privacy ledger: a PE run writes a dict (``fountain.frameworks``: accountant, budget,
    # ``ledger`` entries); older manifests hold a bare list of entries.
    privacy: list[dict[str, Any]] | dict[str, Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    # --- reading and writing ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": self.format,
            "fountain_version": self.fountain_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "spec": {
                "fingerprint": self.spec_fingerprint,
                "fields": self.spec_fields,
                "folder": self.spec_folder,
                "git": self.git,
            },
            "provider": self.provider,
            "counts": self.counts,
            "usage": self.usage,
            "cost_usd": round(self.cost_usd, 6),
            "cost_complete": self.cost_complete,
            "timings": self.timings,
            "runs": self.runs,
            "privacy": self.privacy,
        }
        for key, value in self.extra.items():
            data.setdefault(key, value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        spec = data.get("spec") or {}
        known = {
            "format",
            "fountain_version",
            "created_at",
            "updated_at",
            "status",
            "stop_reason",
            "spec",
            "provider",
            "counts",
            "usage",
            "cost_usd",
            "cost_complete",
            "timings",
            "runs",
            "privacy",
        }
        manifest = cls(
            spec_fingerprint=str(spec.get("fingerprint") or ""),
            spec_fields=dict(spec.get("fields") or {}),
            spec_folder=str(spec.get("folder") or ""),
            git=spec.get("git"),
            provider=dict(data.get("provider") or {}),
            fountain_version=str(data.get("fountain_version") or ""),
            format=int(data.get("format") or FORMAT_VERSION),
            created_at=str(data.get("created_at") or ""),
            updated_at=str(data.get("updated_at") or ""),
            status=str(data.get("status") or "running"),
            stop_reason=data.get("stop_reason"),
            cost_usd=float(data.get("cost_usd") or 0.0),
            cost_complete=bool(data.get("cost_complete", True)),
            runs=list(data.get("runs") or []),
            privacy=(
                dict(data["privacy"]) if isinstance(data.get("privacy"), dict) else list(data.get("privacy") or [])
            ),
            extra={k: v for k, v in data.items() if k not in known},
        )
        if isinstance(data.get("counts"), dict):
            manifest.counts.update(data["counts"])
        if isinstance(data.get("usage"), dict):
            manifest.usage.update(data["usage"])
        if isinstance(data.get("timings"), dict):
            manifest.timings.update(data["timings"])
        return manifest

    @classmethod
    def path_in(cls, output_dir: str | Path) -> Path:
        return Path(output_dir) / MANIFEST_NAME

    @classmethod
    def read(cls, output_dir: str | Path) -> Manifest | None:
        """The manifest of ``output_dir`` (a folder, or the manifest file itself), or None."""
        path = Path(output_dir)
        if path.is_dir() or not path.name.endswith(".json"):
            path = cls.path_in(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise OutputError(
                f"cannot read the manifest: {error.strerror or error}",
                location=str(path),
                hint="check the folder's permissions",
            ) from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            manifest = cls.from_dict(data)
        except (ValueError, TypeError) as error:
            raise OutputError(
                f"the manifest is not valid: {error}",
                location=str(path),
                hint="it is not a fountain manifest, or it was edited by hand; "
                "restore it, or use another --output folder",
            ) from None
        if manifest.format > FORMAT_VERSION:
            raise OutputError(
                f"this output was written by a newer fountain (manifest format {manifest.format})",
                location=str(path),
                hint="upgrade fountain to resume or inspect it",
            )
        return manifest

    def write(self, output_dir: str | Path) -> Path:
        """Write atomically into ``output_dir``: a crash leaves the old or the new file, whole."""
        folder = Path(output_dir)
        self.updated_at = now_iso()
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        write_text_atomic(folder / MANIFEST_NAME, text)
        _fsync_dir(folder)
        return folder / MANIFEST_NAME

    # --- life of a run ------------------------------------------------------------------------

    @classmethod
    def for_spec(
        cls, spec: Spec, *, provider: dict[str, Any] | None = None, output_dir: str | Path | None = None
    ) -> Manifest:
        """A new manifest for ``spec`` (fingerprint, fields, folder and its git state)."""
        from fountain.run.gitinfo import git_state

        folder = Path(spec.folder)
        exclude = [output_dir] if output_dir is not None else []
        state = git_state(folder, exclude=exclude)
        return cls(
            spec_fingerprint=spec.fingerprint(),
            spec_fields=spec_fields(spec),
            spec_folder=str(folder.resolve()),
            git=state.to_dict() if state else None,
            provider=dict(provider or {}),
        )

    def begin(
        self,
        mode: str,
        *,
        provider: dict[str, Any] | None = None,
        git: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append a run-history entry for a start or a resume and mark the run ``running``."""
        entry = {
            "started_at": now_iso(),
            "mode": mode,
            "fountain_version": __version__,
            "provider": dict(provider if provider is not None else self.provider),
            "git": git if git is not None else self.git,
            "ended_at": None,
            "status": "running",
        }
        if options:
            entry["options"] = options
        self.runs.append(entry)
        if provider is not None:
            self.provider = dict(provider)
        if git is not None:
            self.git = git
        self.fountain_version = __version__
        self.status = "running"
        self.stop_reason = None
        return entry

    def end(
        self, status: str, *, reason: str | None = None, stats: Any = None, session_elapsed_s: float | None = None
    ) -> None:
        """Close the latest run-history entry (``completed``, ``stopped`` or ``failed``)."""
        reason = safe_text(reason) if reason else reason  # an error may echo a key or hold escapes
        self.status = status
        self.stop_reason = reason
        if stats is not None:
            self.record_stats(stats)
        if self.runs:
            entry = self.runs[-1]
            entry["ended_at"] = now_iso()
            entry["status"] = status
            if reason:
                entry["reason"] = reason
            if stats is not None:
                entry["stats"] = {k: v for k, v in stats.to_dict().items() if k not in ("usage", "started_at")}
        if session_elapsed_s is not None:
            self.timings["elapsed_s"] = round(self.timings.get("elapsed_s", 0.0) + session_elapsed_s, 3)

    def exported_dataset(self) -> tuple[str, str | None] | None:
        """(file name, format) of the dataset the last session exported, or None. The name is
        a plain file name inside the output folder (anything else in the file is ignored)."""
        output = self.extra.get("output")
        name = output.get("dataset") if isinstance(output, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            return None
        assert isinstance(output, dict)  # name is a str only when output is a dict
        fmt = output.get("format")
        return name, fmt if isinstance(fmt, str) else None

    def record_stats(self, stats: Any) -> None:
        """Copy cumulative usage and cost from a :class:`fountain.providers.dispatch.RunStats`."""
        self.usage = stats.usage.to_dict()
        self.cost_usd = float(stats.cost_usd)
        if getattr(stats, "unpriced", 0):
            self.cost_complete = False


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def spec_fields(spec: Spec) -> dict[str, Any]:
    """``spec.fingerprint_fields()`` when the spec has it (field name -> hash or value)."""
    method = getattr(spec, "fingerprint_fields", None)
    return dict(method()) if callable(method) else {}


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the fingerprint fields that differ (added, removed or changed), sorted."""
    return sorted(k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING))


_MISSING = object()
