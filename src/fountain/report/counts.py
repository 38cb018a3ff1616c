"""Figures read from the run's records: counts, retries, tokens, cost, and the privacy ledger."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fountain.report.load import Dataset
from fountain.run.outputs import REJECTS_FILE


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def counts_section(dataset: Dataset) -> dict[str, Any]:
    """Requested vs produced, accepted and rejected by reason, retries, tokens and cost."""
    manifest = dataset.manifest or {}
    counts = manifest["counts"] if isinstance(manifest.get("counts"), dict) else {}
    requested = counts.get("requested")
    if requested is None and ("seeds_requested" in counts or "derivations_planned" in counts):
        requested = _int(counts.get("seeds_requested")) + _int(counts.get("derivations_planned"))
    target = counts.get("target")
    produced = len(dataset.items)
    goal = target or requested
    accepted = counts.get("accepted") if isinstance(counts.get("accepted"), dict) else None
    accepted_from: str | None
    if dataset.journal_counts is not None:
        accepted = dict(dataset.journal_counts)
        accepted_from = "journals"
    else:
        accepted_from = "manifest" if accepted is not None else None
    # Turn-by-turn utterances asked again are rejects.jsonl lines too ("kind": "utterance"); they
    # are counted apart, not as rejected conversations.
    task_rejects = [r for r in dataset.rejects or [] if r.get("kind") != "utterance"]
    utterance_rejects = Counter(
        str(r.get("reason") or "unknown") for r in dataset.rejects or [] if r.get("kind") == "utterance"
    )
    if dataset.rejects is not None:
        rejected = Counter(str(r.get("reason") or "unknown") for r in task_rejects)
        rejected_from = REJECTS_FILE
    elif isinstance(counts.get("rejected"), dict):
        rejected = Counter({str(k): _int(v) for k, v in counts["rejected"].items()})
        rejected_from = "manifest"
    else:
        rejected, rejected_from = Counter(), None

    provider_retries = None
    runs = manifest["runs"] if isinstance(manifest.get("runs"), list) else []
    stats = [run["stats"] for run in runs if isinstance(run, dict) and isinstance(run.get("stats"), dict)]
    if stats:
        provider_retries = sum(_int(s.get("retries")) for s in stats)
    # An accepted sample's ``attempt`` is the 0-based attempt that passed validation: the attempts
    # before it were re-asks. A reject's ``attempts`` counts every attempt, the first included.
    journal = dataset.journal_items or []
    validation_retries = sum(_int(i.metadata.get("attempt")) for i in journal) + sum(
        max(_int(r.get("attempts")) - 1, 0) for r in task_rejects
    )

    usage = manifest["usage"] if isinstance(manifest.get("usage"), dict) else None
    usage_from = "manifest" if usage else None
    if not usage:
        rows = journal or dataset.items
        found = [i.metadata["usage"] for i in rows if isinstance(i.metadata.get("usage"), dict)]
        if found:
            usage = {
                "prompt_tokens": sum(_int(u.get("prompt_tokens")) for u in found),
                "completion_tokens": sum(_int(u.get("completion_tokens")) for u in found),
            }
            usage_from = "sample metadata (accepted samples only)"
    if usage:
        usage = {
            "prompt_tokens": _int(usage.get("prompt_tokens")),
            "completion_tokens": _int(usage.get("completion_tokens")),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

    models = Counter(str(i.metadata.get("model")) for i in dataset.items if i.metadata.get("model"))
    provider = manifest["provider"] if isinstance(manifest.get("provider"), dict) else {}
    return {
        "requested": requested,
        "target": target,
        "produced": produced,
        "count_accuracy": produced / goal if goal else None,
        "accepted": accepted,
        "accepted_source": accepted_from,
        "rejected": dict(rejected.most_common()),
        "rejected_total": sum(rejected.values()),
        "rejected_source": rejected_from,
        "utterance_rejects": dict(utterance_rejects.most_common()),
        "acceptance_rate": (
            sum(accepted.values()) / (sum(accepted.values()) + sum(rejected.values()))
            if accepted and (sum(accepted.values()) + sum(rejected.values()))
            else None
        ),
        "provider_retries": provider_retries,
        "validation_retries": validation_retries,
        "usage": usage,
        "usage_source": usage_from,
        "cost_usd": manifest.get("cost_usd"),
        "cost_complete": manifest.get("cost_complete"),
        "provider": provider.get("provider") or provider.get("name"),
        "model": provider.get("model"),
        "models": dict(models.most_common()),
        "status": manifest.get("status"),
        "stop_reason": manifest.get("stop_reason"),
        "spec_fingerprint": (manifest.get("spec") or {}).get("fingerprint")
        if isinstance(manifest.get("spec"), dict)
        else manifest.get("spec_fingerprint"),
        "elapsed_s": (manifest.get("timings") or {}).get("elapsed_s")
        if isinstance(manifest.get("timings"), dict)
        else None,
    }


def privacy_section(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The privacy ledger of a PE run: the manifest's ``privacy`` (a ledger dict or entry list)."""
    if not manifest:
        return None
    privacy = manifest.get("privacy")
    summary: dict[str, Any] = {}
    if isinstance(privacy, dict):
        ledger = privacy.get("ledger") or privacy.get("iterations") or []
        summary = {
            k: privacy.get(k) for k in ("accountant", "delta", "epsilon_budget", "epsilon", "mu") if k in privacy
        }
    elif isinstance(privacy, list):
        ledger = privacy
    else:
        return None
    ledger = [entry for entry in ledger if isinstance(entry, dict)]
    if not ledger and not summary:
        return None
    if ledger and "epsilon" not in summary:
        summary["epsilon"] = ledger[-1].get("epsilon")
        summary["delta"] = ledger[-1].get("delta")
    return {**summary, "iterations": len(ledger), "ledger": ledger}
