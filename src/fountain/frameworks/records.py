"""What a framework run keeps beside the engine's files: ``framework.json`` (its state), its
rejects (``duplicate:``, ``rf:``, ``pe:``), the turns dedup compares, and small helpers of the
runner (the embed extra's check, the stats of all rounds combined)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fountain.errors import OutputError
from fountain.generation.enrich import Enrichment
from fountain.generation.plan import SEED
from fountain.run.atomic import write_text_atomic
from fountain.types import Sample

STATE_FILE = "framework.json"
EMBEDDINGS_FILE = "embeddings.sqlite"
FRAMEWORK_REASONS = ("duplicate:", "rf:", "pe:")
STATE_VERSION = 1


def dedup_view(sample: Sample) -> tuple:
    """The turns dedup compares: what the model wrote. A derivation's prefix is its parent's by
    design, so only its continuation counts; a seed counts whole."""
    prov = sample.provenance
    if prov.kind != SEED and prov.conversation_type != "instruct" and prov.prefix_turns:
        return tuple(sample.turns[prov.prefix_turns :])
    return tuple(sample.turns)


def family_keys(samples: Sequence[Sample]) -> list[str]:
    """The family of each sample: the id of the seed it grew from (its own id for a seed),
    following ``parent_id`` through ``samples`` (a Feedback variation of a variation reaches the
    seed); a parent not among them is the family itself. Dedup compares one family's members by
    their new turns at a stricter embedding threshold (:mod:`fountain.raters.dedup`)."""
    parents = {s.id: s.provenance.parent_id for s in samples}
    keys = []
    for sample in samples:
        key, seen = sample.id, set()
        while parents.get(key) and key not in seen:
            seen.add(key)
            key = parents[key] or key
        keys.append(key)
    return keys


def reject_record(sample: Sample, reason: str, detail: str, *, keep_text: bool = False, **extra: Any) -> dict[str, Any]:
    """A ``rejects.jsonl`` record for an accepted sample the framework leaves out. With
    ``keep_text`` it carries the conversation (``messages``): for duplicates, so a user can read
    what was dropped; never for rater rejects, whose near-copies of real (maybe private) records
    stay in the journal only."""
    full = sample.to_record()
    meta = full["metadata"]
    for key in ("id", "kind", "direction"):
        meta.pop(key, None)
    record = {
        "id": sample.id,
        "kind": sample.provenance.kind,
        "direction": sample.provenance.direction,
        "reason": reason,
        "detail": detail,
        "raw": "",
        "attempts": 0,
    }
    record.update(extra)
    if keep_text:
        record["messages"] = full["messages"]
    record["metadata"] = meta
    return record


def _is_framework_reject(record: dict[str, Any]) -> bool:
    return str(record.get("reason") or "").startswith(FRAMEWORK_REASONS)


def _write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def load_state(output_dir: str | Path) -> dict[str, Any] | None:
    """``framework.json`` of an output folder (None when absent)."""
    path = Path(output_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise OutputError(
            f"{STATE_FILE} cannot be read ({error})",
            location=str(path),
            hint="it was damaged or edited; restore it, or write the run elsewhere with --output",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        raise OutputError(
            f"{STATE_FILE} is not a fountain framework state",
            location=str(path),
            hint="restore it, or write the run elsewhere with --output",
        )
    return data


def _embed_extra_missing(name: str | None) -> str | None:
    """The first package of the embed extra that is not installed (None when all are)."""
    from fountain.embed import BUNDLED_ALIASES, BUNDLED_PACKAGE

    needed = ["torch", "sentence_transformers"]
    if name in BUNDLED_ALIASES:
        needed.append(BUNDLED_PACKAGE)
    for package in needed:
        try:
            if importlib.util.find_spec(package) is None:
                return package
        except (ImportError, ValueError):
            return package
    return None


def _combine_stats(all_stats: list[Any]) -> Any:
    from fountain.providers.dispatch import RunStats
    from fountain.types import Usage

    if not all_stats:
        return None
    total = RunStats()
    total.started = all_stats[0].started
    total.started_at = all_stats[0].started_at
    session = Usage()
    for stats in all_stats:
        for name in ("requests", "completed", "cache_hits", "retries", "rate_limited", "failed", "unpriced"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        total.errors.update(stats.errors)
        session = session + stats.session_usage
    total.session_usage = session
    sent = [s.first_sent for s in all_stats if s.first_sent is not None]
    answered = [s.last_answered for s in all_stats if s.last_answered is not None]
    total.first_sent = min(sent) if sent else None  # so provider_span_s covers every round
    total.last_answered = max(answered) if answered else None
    total.usage = all_stats[-1].usage
    total.cost_usd = all_stats[-1].cost_usd
    return total


# --- GenLLM's enrichment.json ---------------------------------------------------------------------

ENRICHMENT_FILE = "enrichment.json"


def load_enrichment(path: str | Path) -> Enrichment | None:
    """The saved enrichment, or None when there is none; OutputError when it is damaged."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise OutputError(f"cannot read {path.name}: {error.strerror or error}", location=str(path)) from None
    try:
        return Enrichment.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as error:
        raise OutputError(
            f"{path.name} is not a valid enrichment ({error})",
            location=str(path),
            hint="delete it to ask the model again (the answer is cached), or restore it",
        ) from None


def save_enrichment(path: str | Path, enrichment: Enrichment) -> Path:
    """Write ``enrichment.json`` atomically (temporary file + rename)."""
    return write_text_atomic(path, json.dumps(enrichment.to_dict(), indent=2, ensure_ascii=False) + "\n")
