"""Whether an output folder is a new run or one to resume: the spec's fingerprint, the provider, the mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain import __version__
from fountain.errors import OutputError
from fountain.run.manifest import MANIFEST_NAME, RESUME_MODES, RUN_FILE_SUFFIXES, Manifest, changed_fields, spec_fields

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

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
