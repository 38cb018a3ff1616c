"""Assemble a report: read the data, run every metric that can run, say why the others did not.

:func:`build_report` returns a :class:`Report`: ``figures`` is a JSON-ready dict (what
``--json`` prints and the terminal and HTML show); ``raw`` keeps the distributions the HTML plots.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fountain.errors import FountainError, MissingDependencyError
from fountain.report import grounding, metrics, quality, vectors
from fountain.report.counts import counts_section, privacy_section
from fountain.report.embeddings import _Embeddings
from fountain.report.judge import judge_section
from fountain.report.load import Dataset, Item, load_dataset, load_real

DEFAULT_SAMPLE = 500
DEFAULT_BROWSE = 50
KNN_K = 3
MEMORISATION_THRESHOLD = 0.95
MINHASH_THRESHOLD = 0.9
NO_LABEL = "(none)"


@dataclass
class Report:
    """The figures of a report (JSON-ready), the data behind its plots, and a sample to browse."""

    figures: dict[str, Any]
    dataset: Dataset
    raw: dict[str, Any] = field(default_factory=dict)
    browse: list[Item] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(_json_safe(self.figures), indent=2, ensure_ascii=False)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


class _Skips:
    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    def add(self, metric: str, reason: str) -> None:
        self.entries.append({"metric": metric, "reason": reason})


def build_report(
    path: str | Path,
    *,
    real_data: str | Path | None = None,
    spec: str | Path | None = None,
    diagram: Any = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    embed: bool = True,
    embedder: Any = None,
    browse: int = DEFAULT_BROWSE,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Measure the dataset at ``path`` (an output folder, a dataset.jsonl or a Janus outputs.json).

    ``real_data``: a file of real conversations to compare with. ``spec``: the spec folder whose
    diagram grounds the coverage figures (found from the manifest or next to the output when
    omitted); ``diagram`` (a Diagram or its dict form) overrides it. ``sample`` bounds the
    sampled metrics (self-BLEU, readability, embeddings); ``seed`` fixes the samples.
    ``embed=False`` skips the embedding metrics; ``embedder`` supplies one (anything with
    ``encode(texts) -> array``) instead of loading fountain's default.
    """
    say = progress or (lambda message: None)
    if sample < 2:
        raise FountainError("the sample size must be at least 2", location="--sample")
    skips = _Skips()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    say("reading the dataset")
    dataset = load_dataset(path)
    items = dataset.items
    real_items = load_real(real_data) if real_data is not None else None
    lap("load")
    rng = random.Random(seed)
    sample_index = sorted(rng.sample(range(len(items)), min(sample, len(items))))

    figures: dict[str, Any] = {
        "source": {
            "path": str(dataset.path),
            "file": str(dataset.source),
            "format": dataset.format,
            "conversations": len(items),
            "notes": list(dataset.notes),
            "sample_size": len(sample_index),
            "seed": seed,
        },
        "counts": counts_section(dataset),
    }
    figures["judge"] = judge_section(dataset.manifest, items)  # fountain run --judge (None without)
    lap("counts")
    if not items:
        return _empty_report(dataset, figures, skips, timings)
    say("structure")
    structure, raw = structure_section(items)
    figures["structure"] = structure
    lap("structure")

    say("embeddings")
    embedding = _Embeddings(items, sample_index, real_items, rng, embed, embedder, skips, sample)
    lap("embeddings")

    say("diversity")
    figures["diversity"] = diversity_section(items, sample, seed, embedding, skips)
    lap("diversity")

    say("grounding")
    found: dict[str, Any] = {}
    figures["grounding"] = grounding_section(dataset, spec, diagram, skips, found=found)
    lap("grounding")

    say("quality")
    g = figures["grounding"] or {}
    figures["quality"] = quality.quality_section(
        [item.messages for item in items],
        diagram=found.get("diagram"),
        user_role=g.get("user_role"),
        assistant_role=g.get("assistant_role"),
        role_consistency=g.get("role_consistency"),
    )
    lap("quality")

    say("readability")
    figures["readability"] = readability_section([items[i] for i in sample_index], skips)
    lap("readability")

    if real_items is not None:
        say("comparing with the real data")
        figures["real_data"], real_raw = real_section(items, real_items, embedding, skips)
        raw.update(real_raw)
        lap("real_data")
    else:
        figures["real_data"] = None
        skips.add("real data comparison", "no --real-data file given")

    figures["privacy"] = privacy_section(dataset.manifest)
    if figures["privacy"] is None:
        skips.add(
            "privacy ledger",
            "the manifest has no privacy ledger (Private Evolution was not used)"
            if dataset.manifest is not None
            else "no manifest.json",
        )
    figures["skipped"] = skips.entries
    figures["timings_s"] = timings
    browse_ids = sorted(random.Random(seed + 1).sample(range(len(items)), min(browse, len(items))))
    return Report(figures, dataset, raw, [items[i] for i in browse_ids])


def _empty_report(dataset: Dataset, figures: dict[str, Any], skips: _Skips, timings: dict[str, float]) -> Report:
    """The report of an empty dataset: its counts and rejections, and no conversation metric."""
    figures["source"]["empty"] = True
    for name in ("structure", "diversity", "grounding", "readability", "real_data"):
        figures[name] = None
    skips.add("every conversation metric", "the dataset is empty")
    figures["privacy"] = privacy_section(dataset.manifest)
    figures["skipped"] = skips.entries
    figures["timings_s"] = timings
    return Report(figures, dataset, {"synthetic": lengths([])}, [])


# --- structure ----------------------------------------------------------------------------------


def lengths(items: Sequence[Item]) -> dict[str, list[int]]:
    """Turns per conversation, words per conversation, words per user and per assistant turn."""
    out: dict[str, list[int]] = {"turns": [], "words": [], "user_words": [], "assistant_words": []}
    for item in items:
        out["turns"].append(len(item.turns))
        total = 0
        for role, content in item.messages:
            if role == "system":
                continue
            count = metrics.word_count(content)
            total += count
            out[f"{role}_words"].append(count)
        out["words"].append(total)
    return out


def structure_section(items: Sequence[Item]) -> tuple[dict[str, Any], dict[str, Any]]:
    found = lengths(items)
    roles = Counter(role for item in items for role, _ in item.messages)
    figures = {
        "turns_per_conversation": metrics.describe(found["turns"]),
        "words_per_conversation": metrics.describe(found["words"]),
        "words_per_turn": {
            "user": metrics.describe(found["user_words"]),
            "assistant": metrics.describe(found["assistant_words"]),
        },
        "messages": dict(roles),
        "with_system_message": sum(1 for item in items if any(r == "system" for r, _ in item.messages)),
        "empty_messages": sum(1 for item in items for r, c in item.messages if r != "system" and not c.strip()),
        "unpaired": sum(1 for item in items if len(item.texts("user")) != len(item.texts("assistant"))),
    }
    return figures, {"synthetic": found}


# --- diversity ------------------------------------------------------------------------------------


def _groups(items: Sequence[Item]) -> dict[str, dict[str, list[int]]]:
    groups: dict[str, dict[str, list[int]]] = {}
    for name, attribute in (("kind", "kind"), ("direction", "direction")):
        found: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            found.setdefault(getattr(item, attribute) or NO_LABEL, []).append(index)
        if set(found) != {NO_LABEL}:
            groups[name] = dict(sorted(found.items()))
    return groups


def diversity_section(
    items: Sequence[Item], sample: int, seed: int, embedding: _Embeddings, skips: _Skips
) -> dict[str, Any]:
    """distinct-1/2/3, self-BLEU, exact and MinHash duplicate rates, embedding spread; by group."""
    message_texts: list[str] = []
    owner: list[int] = []
    for item_index, item in enumerate(items):
        for role, content in item.messages:
            if role != "system":
                message_texts.append(content)
                owner.append(item_index)
    index = metrics.TokenIndex(message_texts)
    owner_array = np.asarray(owner)
    conversation_text = [item.text for item in items]
    from fountain.raters.dedup import normalize_text

    keys = [normalize_text(text) for text in conversation_text]
    try:
        near = metrics.NearDuplicates(conversation_text, threshold=MINHASH_THRESHOLD)
    except MissingDependencyError:
        near = None
        skips.add("MinHash near-duplicate rate", "datasketch is not installed (pip install 'fountain[embed]')")
    position = {item_index: row for row, item_index in enumerate(embedding.sample_index)}

    def measure(members: list[int]) -> dict[str, Any]:
        chosen = np.flatnonzero(np.isin(owner_array, members)) if len(members) != len(items) else None
        texts = [conversation_text[i] for i in members]
        result: dict[str, Any] = {"conversations": len(members)}
        for n in (1, 2, 3):
            result[f"distinct_{n}"] = index.distinct(n, chosen)
        result["self_bleu"] = metrics.self_bleu(texts, sample=sample, seed=seed)
        result["self_bleu_sample"] = min(sample, len(texts))
        result["exact_duplicate_rate"] = metrics.exact_rate_of_keys([keys[i] for i in members])
        result["minhash_duplicate_rate"] = near.rate(members) if near is not None else None
        if embedding.synthetic is not None:
            rows = [position[i] for i in members if i in position]
            result["mean_pairwise_distance"] = vectors.mean_pairwise_distance(embedding.synthetic[rows])
            result["embedded"] = len(rows)
        else:
            result["mean_pairwise_distance"] = None
        return result

    out: dict[str, Any] = {"overall": measure(list(range(len(items))))}
    for name, found in _groups(items).items():
        out[f"by_{name}"] = {label: measure(members) for label, members in found.items()}
    if not _groups(items):
        skips.add("diversity by kind and direction", "the conversations carry no provenance (kind/direction metadata)")
    return out


# --- grounding --------------------------------------------------------------------------------------


def _spec_candidates(dataset: Dataset) -> list[Path]:
    found = []
    manifest = dataset.manifest or {}
    spec = manifest["spec"] if isinstance(manifest.get("spec"), dict) else {}
    folder = spec.get("folder") or manifest.get("spec_folder")
    if folder:
        found.append(Path(folder))
    # An output folder sits in its spec folder (SPEC/output); a Janus outputs.json sits beside it.
    for candidate in (dataset.folder.parent, dataset.folder):
        if (candidate / "setup.yaml").is_file():
            found.append(candidate)
    return found


def _load_spec(folder: Path) -> Any:
    from fountain.spec.load import load_spec

    return load_spec(folder)


def grounding_section(
    dataset: Dataset, spec_dir: str | Path | None, diagram: Any, skips: _Skips, *, found: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Diagram coverage and role consistency; ``found["diagram"]`` receives the diagram used."""
    roles: dict[str, str | None] = {"user_role": None, "assistant_role": None}
    spec_used = None
    if diagram is None:
        candidates = [Path(spec_dir)] if spec_dir is not None else _spec_candidates(dataset)
        problems = []
        for folder in candidates:
            try:
                spec = _load_spec(folder)
            except (ImportError, NotImplementedError) as error:
                problems.append(f"the spec loader is not available ({type(error).__name__})")
                break
            except FountainError as error:
                if spec_dir is not None:
                    raise  # the user named this folder: its errors are theirs to see
                problems.append(f"{folder}: {error.message}")
                continue
            diagram, spec_used = spec.diagram, str(folder)
            roles = {"user_role": spec.user_role, "assistant_role": spec.assistant_role}
            break
        if diagram is None:
            reason = "; ".join(problems) or (
                "no spec folder found (give --spec DIR, or keep the output folder inside its spec folder)"
            )
            skips.add("grounding coverage", reason)
    items = dataset.items
    result: dict[str, Any] = {"spec": spec_used, **roles, "coverage": None}
    if diagram is not None:
        result["coverage"] = grounding.coverage([item.text for item in items], diagram)
    users = [c for item in items for c in item.texts("user")]
    assistants = [c for item in items for c in item.texts("assistant")]
    result["role_consistency"] = grounding.role_consistency(users, assistants)
    if found is not None:
        found["diagram"] = diagram
    return result


# --- readability ----------------------------------------------------------------------------------


def readability_section(items: Sequence[Item], skips: _Skips) -> dict[str, Any] | None:
    backend, note = metrics.readability_backend()
    if backend is None:
        skips.add("readability", note or "textstat is not installed")
        return None
    result: dict[str, Any] = {"backend": backend, "note": note, "conversations": len(items)}
    for role in ("user", "assistant"):
        result[role] = metrics.readability([c for item in items for c in item.texts(role)], backend)
    return result


# --- real data ----------------------------------------------------------------------------------------


def real_section(
    items: Sequence[Item], real_items: list[Item], embedding: _Embeddings, skips: _Skips
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Length KS tests always; Fréchet, k-NN precision/recall and memorisation with embeddings.

    Never quotes a real conversation: the real data may be private.
    """
    synthetic_lengths, real_lengths = lengths(items), lengths(real_items)
    result: dict[str, Any] = {"conversations": len(real_items), "ks": {}}
    for key in ("turns", "words", "user_words", "assistant_words"):
        if synthetic_lengths[key] and real_lengths[key]:
            result["ks"][key] = metrics.ks_test(synthetic_lengths[key], real_lengths[key])
    result["real_structure"] = {
        "turns_per_conversation": metrics.describe(real_lengths["turns"]),
        "words_per_conversation": metrics.describe(real_lengths["words"]),
    }
    raw: dict[str, Any] = {"real": real_lengths}
    if embedding.synthetic is None or embedding.real is None:
        return result, raw
    synthetic, real = embedding.synthetic, embedding.real
    result["embedder"] = embedding.name
    result["embedded"] = {"synthetic": int(synthetic.shape[0]), "real": int(real.shape[0])}
    if synthetic.shape[0] >= 2 and real.shape[0] >= 2:
        result["frechet_distance"] = vectors.frechet_distance(real, synthetic)
    else:
        skips.add("Fréchet distance", "needs at least 2 real and 2 synthetic conversations")
    if synthetic.shape[0] > KNN_K and real.shape[0] > KNN_K:
        precision, recall = vectors.knn_precision_recall(real, synthetic, k=KNN_K)
        result["knn_precision"], result["knn_recall"], result["knn_k"] = precision, recall, KNN_K
    else:
        skips.add("k-NN precision/recall", f"needs more than k={KNN_K} real and synthetic conversations")
    nearest = vectors.nearest_similarity(real, synthetic)
    flagged = nearest > MEMORISATION_THRESHOLD
    result["memorisation_rate"] = float(flagged.mean())
    result["memorisation_threshold"] = MEMORISATION_THRESHOLD
    # Synthetic ids only: which generated conversations look copied, never the real text.
    result["memorised_ids"] = [items[embedding.sample_index[i]].id for i in np.flatnonzero(flagged)[:20]]
    result["nearest_real_similarity"] = metrics.describe(nearest)
    raw["nearest_real_similarity"] = nearest.tolist()
    return result, raw


def format_number(value: Any, digits: int = 3) -> str:
    """A figure for a table cell (terminal or HTML, unescaped): ``—`` for missing, ``yes``/``no``
    for booleans, thousands separators for whole numbers, ``digits`` decimals otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.{digits}f}"
    return str(value)


def format_pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"
