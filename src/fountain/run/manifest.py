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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain import __version__
from fountain.errors import OutputError
from fountain.run.atomic import write_text_atomic
from fountain.run.outputs import DERIVATIONS_FILE, LOCK_FILE, MANIFEST_FILE, REJECTS_FILE, SEEDS_FILE
from fountain.safety import safe_text

MANIFEST_NAME = MANIFEST_FILE
LOCK_NAME = LOCK_FILE

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

FORMAT_VERSION = 1
RESUME_MODES = ("if-compatible", "always", "never")
# Files whose presence means a run already wrote into a folder (besides the manifest).
RUN_FILE_SUFFIXES = (".jsonl",)


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


# --- resume decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeDecision:
    """What to do with an output folder: ``action`` is "start" (a fresh run) or "resume"."""

    action: str
    manifest: Manifest | None = None
    notes: tuple[str, ...] = ()  # what changed besides the spec (provider, model, fountain version)

    @property
    def resuming(self) -> bool:
        return self.action == "resume"


def previous_run_files(output_dir: Path) -> list[str]:
    """Names of files in ``output_dir`` that a previous run wrote (manifest, journals)."""
    if not output_dir.is_dir():
        return []
    names = []
    for entry in sorted(output_dir.iterdir()):
        if entry.name == "batches.jsonl":  # fountain.batch's job ledger: written before the run starts
            continue
        if entry.name == MANIFEST_NAME or (entry.is_file() and entry.suffix in RUN_FILE_SUFFIXES):
            names.append(entry.name)
    return names


def check_resume(
    output_dir: str | Path, spec: Spec, mode: str = "if-compatible", *, provider: dict[str, Any] | None = None
) -> ResumeDecision:
    """Decide whether a run of ``spec`` may start in / resume ``output_dir``, or refuse.

    - ``if-compatible`` (default): no previous run → start; a previous run of the same spec
      fingerprint with the same provider and model → resume; anything else → refuse, naming what
      changed.
    - ``always``: a previous run must exist (else refuse: a typo in ``--output`` must not start a
      silent new folder) and have the same spec fingerprint; a different provider, model or
      fountain version is accepted and recorded in the run history.
    - ``never``: start only in an empty or new folder; refuse if a previous run is there.

    Never: overwrite a previous run, or mix two spec versions in one folder. Refusals raise
    :class:`~fountain.errors.OutputError` with a hint.
    """
    if mode not in RESUME_MODES:
        raise OutputError(
            f"unknown resume mode {mode!r}", location="--resume", hint=f"one of {', '.join(RESUME_MODES)}"
        )
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            "the output path exists and is not a folder", location=str(folder), hint="choose another path with --output"
        )
    manifest = Manifest.read(folder) if folder.is_dir() else None
    files = previous_run_files(folder)
    if manifest is None and not files:
        if mode == "always":
            raise OutputError(
                "nothing to resume: this folder holds no fountain run",
                location=str(folder),
                hint="check the --output path; to start a new run there, use --resume if-compatible",
            )
        return ResumeDecision("start")
    if manifest is None:
        raise OutputError(
            f"the output folder holds files of an unknown run ({', '.join(files[:4])}) but no {MANIFEST_NAME}",
            location=str(folder),
            hint="fountain cannot tell which spec wrote them and will not mix or overwrite them: "
            "move them away, or choose another folder with --output",
        )
    if mode == "never":
        raise OutputError(
            "the output folder already holds a run (--resume never refuses to write into it)",
            location=str(folder),
            hint="choose a new folder with --output, delete this one yourself, or resume it "
            "with --resume if-compatible",
        )

    new_fingerprint = spec.fingerprint()
    if manifest.spec_fingerprint != new_fingerprint:
        changed = changed_fields(manifest.spec_fields, spec_fields(spec))
        what = (
            f"changed fields: {', '.join(changed)}"
            if changed
            else "the fields that changed are unknown (the manifest does not list them)"
        )
        raise OutputError(
            f"this output was made by another version of the spec "
            f"(fingerprint {manifest.spec_fingerprint[:12]} there, {new_fingerprint[:12]} now); "
            f"{what}",
            location=str(folder / MANIFEST_NAME),
            hint="one output folder holds one spec version: write the new version elsewhere with "
            "--output NEW_FOLDER, or restore the spec to resume this run",
        )

    notes = []
    provider = dict(provider or {})
    if provider and manifest.provider and not _same_provider(provider, manifest.provider):
        was, now = _describe(manifest.provider), _describe(provider)
        if mode == "if-compatible":
            raise OutputError(
                f"this output was generated with {was}, and this run would use {now}",
                location=str(folder / MANIFEST_NAME),
                hint="to continue it with the new model anyway (each sample records its model), "
                "add --resume always; otherwise choose another folder with --output",
            )
        notes.append(f"provider changed: {was} -> {now}")
    if manifest.fountain_version and manifest.fountain_version != __version__:
        notes.append(f"fountain version changed: {manifest.fountain_version} -> {__version__}")
    return ResumeDecision("resume", manifest, tuple(notes))


def _provider_key(identity: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (
        identity.get("provider") or identity.get("name"),
        identity.get("model"),
        identity.get("base_url") or identity.get("endpoint"),
    )


def _same_provider(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same provider, model and endpoint; a part unknown on either side (None) is not compared."""
    return all(x is None or y is None or x == y for x, y in zip(_provider_key(a), _provider_key(b)))


def _describe(identity: dict[str, Any]) -> str:
    name, model, endpoint = _provider_key(identity)
    text = f"{name}" + (f" model {model}" if model else "")
    return text + (f" at {endpoint}" if endpoint else "")


# --- status of an output folder -------------------------------------------------------------------

JOURNALS = {"seed": SEEDS_FILE, "derivation": DERIVATIONS_FILE}
REJECTS = REJECTS_FILE


def _scan_jsonl(
    path: Path,
    reasons: dict[str, dict[str, int]] | None = None,
    *,
    usage: dict[str, int] | None = None,
    problems: list[str] | None = None,
) -> tuple[int, bool]:
    """(records, whether a torn last line is there) of a JSONL file, streamed and read-only (the
    journal reader of a run, without its repair). With ``reasons``, rejects are also counted by
    kind and reason; with ``usage``, the token usage in each record's metadata is added to it.
    A damaged line (not the last) ends the count: it goes into ``problems`` (raised without)."""
    from fountain.run.journal import scan_journal

    scan = scan_journal(path, repair=False)
    count = 0
    try:
        for line in scan:
            record = line.record
            if reasons is not None:
                kind = str(record.get("kind") or "unknown")
                reason = str(record.get("reason") or "unknown")
                reasons.setdefault(kind, {})
                reasons[kind][reason] = reasons[kind].get(reason, 0) + 1
            if usage is not None:
                meta = record.get("metadata")
                used = meta.get("usage") if isinstance(meta, dict) else None
                if isinstance(used, dict):
                    for name in ("prompt_tokens", "completion_tokens"):
                        value = used.get(name)
                        if isinstance(value, int) and not isinstance(value, bool):
                            usage[name] = usage.get(name, 0) + value
            count += 1
    except OutputError as error:
        if problems is None:
            raise
        problems.append(
            f"{error}\n(the counts of {path.name} stop before that line; `fountain run` "
            "refuses the folder until it is fixed)"
        )
    return count, bool(scan.torn)


def collect_status(
    output_dir: str | Path, *, check_spec: bool = True, spec_folder: str | Path | None = None
) -> dict[str, Any]:
    """What a run in ``output_dir`` has done and has left, from its manifest and journals.

    Read-only (a torn last line is reported, not repaired). With ``check_spec``, a spec folder is
    loaded again to tell whether it changed since: ``spec_folder`` when given, else the one the
    manifest names, else (when that one is gone: the folders were moved or cloned elsewhere) the
    output folder's parent when it holds a ``setup.yaml`` (the default ``<spec>/output`` layout).
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        raise OutputError(
            "no such output folder",
            location=str(folder),
            hint="give the output folder of a run (by default <spec folder>/output)",
        )
    manifest = Manifest.read(folder)
    if manifest is None:
        raise OutputError(
            f"no fountain run here ({MANIFEST_NAME} is missing)",
            location=str(folder),
            hint="give the output folder of a run (by default <spec folder>/output)",
        )
    counts = manifest.counts
    rejected_by_kind: dict[str, dict[str, int]] = {}
    accepted: dict[str, int] = {}
    torn: list[str] = []
    problems: list[str] = []
    journal_usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}
    for kind, name in JOURNALS.items():
        accepted[kind], was_torn = _scan_jsonl(folder / name, usage=journal_usage, problems=problems)
        if was_torn:
            torn.append(name)
    _, was_torn = _scan_jsonl(folder / REJECTS, rejected_by_kind, usage=journal_usage, problems=problems)
    if was_torn:
        torn.append(REJECTS)
    rejected_reasons: dict[str, int] = {}
    for reasons in rejected_by_kind.values():
        for reason, n in reasons.items():
            rejected_reasons[reason] = rejected_reasons.get(reason, 0) + n
    rejected = {kind: sum(reasons.values()) for kind, reasons in rejected_by_kind.items()}

    seeds_requested = int(counts.get("seeds_requested") or 0)
    derivations_planned = int(counts.get("derivations_planned") or 0)
    seeds_done = accepted["seed"] + rejected.get("seed", 0)
    derivations_done = accepted["derivation"] + rejected.get("derivation", 0)
    # A run still going (or killed) plans derivations as its seeds are accepted: the manifest has
    # the plan of when it started, the journals what was done since.
    derivations_planned = max(derivations_planned, derivations_done)
    usage, cost, cost_complete = dict(manifest.usage), manifest.cost_usd, manifest.cost_complete
    usage_source = "manifest"
    if manifest.status == "running" and any(journal_usage[k] > int(usage.get(k) or 0) for k in journal_usage):
        # The manifest gets usage and cost when a session ends; a killed or running session's
        # requests are in the journals (each record carries the usage of its requests).
        usage = {k: max(int(usage.get(k) or 0), v) for k, v in journal_usage.items()}
        usage_source = "journals"
        cost, cost_complete = _journal_cost(manifest, usage)
    # The file the last session exported (outputs.json for --format janus, a JSON list whose
    # size the manifest's counts give).
    exported = manifest.exported_dataset()
    dataset_name = exported[0] if exported else "dataset.jsonl"
    dataset = folder / dataset_name
    if not dataset.is_file():
        dataset_records = None
    elif dataset_name.endswith(".jsonl"):
        dataset_records = _scan_jsonl(dataset, problems=problems)[0]
    else:
        dataset_records = manifest.counts.get("dataset_records")
    status: dict[str, Any] = {
        "output": str(folder.resolve()),
        "status": manifest.status,
        "stop_reason": manifest.stop_reason,
        "updated_at": manifest.updated_at,
        "created_at": manifest.created_at,
        "fountain_version": manifest.fountain_version,
        "spec": {
            "folder": manifest.spec_folder,
            "fingerprint": manifest.spec_fingerprint,
            "git": manifest.git,
            "changed_since": None,
        },
        "provider": manifest.provider,
        "seeds": {
            "requested": seeds_requested,
            "accepted": accepted["seed"],
            "rejected": rejected.get("seed", 0),
            "left": max(0, seeds_requested - seeds_done),
        },
        "derivations": {
            "planned": derivations_planned,
            "accepted": accepted["derivation"],
            "rejected": rejected.get("derivation", 0),
            "left": max(0, derivations_planned - derivations_done),
        },
        "rejected_by_reason": dict(sorted(rejected_reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "dataset_file": dataset_name,
        "dataset_records": dataset_records,
        "usage": usage,
        "usage_source": usage_source,
        "cost_usd": cost,
        "cost_complete": cost_complete,
        "elapsed_s": manifest.timings.get("elapsed_s", 0.0),
        "sessions": len(manifest.runs),
        "runs": manifest.runs,
        "torn_lines": torn,
        "problems": problems,
        "privacy": manifest.privacy,
    }
    if check_spec:
        compared = _spec_to_compare(manifest, folder, spec_folder)
        if compared is not None:
            status["spec"]["compared_with"] = str(compared)
            status["spec"]["changed_since"] = _spec_changes(manifest, compared)
        elif manifest.spec_folder:
            status["spec"]["changed_since"] = (
                f"the spec folder {manifest.spec_folder} is gone (moved?): pass --spec DIR to compare"
            )
    return status


def _spec_to_compare(manifest: Manifest, output: Path, given: str | Path | None) -> Path | None:
    if given is not None:
        return Path(given)
    if manifest.spec_folder and Path(manifest.spec_folder).is_dir():
        return Path(manifest.spec_folder)
    parent = output.resolve().parent
    if manifest.spec_folder and (parent / "setup.yaml").is_file():
        return parent
    return None


def _journal_cost(manifest: Manifest, usage: dict[str, int]) -> tuple[float, bool]:
    """(cost, complete) of ``usage`` at the price of the run's provider and model; the manifest's
    cost (incomplete) when no price is known. An estimate: the journals do not name every model."""
    from fountain.providers.cost import PriceTable
    from fountain.types import Usage

    provider = manifest.provider or {}
    try:
        price = PriceTable.load().lookup(str(provider.get("provider") or ""), provider.get("model"))
    except Exception:  # noqa: BLE001 - a broken FOUNTAIN_PRICES must not break status
        price = None
    if price is None:
        return manifest.cost_usd, provider.get("provider") in ("fake", "local")
    return max(manifest.cost_usd, price.cost(Usage(usage["prompt_tokens"], usage["completion_tokens"]))), True


def _spec_changes(manifest: Manifest, spec_folder: Path) -> list[str] | str | None:
    """Fields changed in ``spec_folder`` since the run (``[]``: unchanged), or a note why unknown."""
    try:
        from fountain.spec.load import load_spec

        spec = load_spec(spec_folder)
        overrides = (manifest.extra.get("framework") or {}).get("overrides")
        if overrides:  # the run's --framework/--rater/--epsilon... (fountain.frameworks)
            from fountain.spec.overrides import apply_overrides

            spec = apply_overrides(spec, overrides)
        if spec.fingerprint() == manifest.spec_fingerprint:
            return []
        return changed_fields(manifest.spec_fields, spec_fields(spec)) or ["(unknown fields)"]
    except Exception as error:  # status must work even when the spec no longer loads
        text = getattr(error, "message", None) or str(error) or type(error).__name__
        return f"cannot load the spec now: {text.splitlines()[0]}"
