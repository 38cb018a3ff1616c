"""`fountain status`: what an output folder's run has done and has left, from its manifest and journals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fountain.errors import OutputError
from fountain.run.manifest import MANIFEST_NAME, Manifest, changed_fields, spec_fields
from fountain.run.outputs import DERIVATIONS_FILE, REJECTS_FILE, SEEDS_FILE

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
        # a fleet of servers: what each one answered in the last session that ended (not a killed one)
        "servers": manifest.extra.get("servers") or [],
        "judge": manifest.extra.get("judge"),  # the judge's figures (fountain.run.judging), None without one
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
