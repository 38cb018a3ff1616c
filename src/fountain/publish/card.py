"""The dataset card (``README.md``): YAML metadata the Hub and ``datasets`` read (license, task,
language, size, the split files, the declared features) and the sections that say where the data
came from: the spec and its diagram, the provider and model, the directions, counts, date,
versions, quality figures, cost and, for a Private Evolution run, the privacy guarantee."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from fountain.publish.source import Source
from fountain.run.features import record_features

SPLIT_FILES = {"train": "data/train.jsonl", "test": "data/test.jsonl"}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


@dataclass
class CardOptions:
    """What the user says about the dataset (the rest is read from the output folder)."""

    license: str = "other"
    language: tuple[str, ...] = ("en",)
    pretty_name: str | None = None
    tags: tuple[str, ...] = ()
    repo_id: str | None = None  # OWNER/NAME when pushed; used in the usage snippets
    split_counts: dict[str, int] = field(default_factory=dict)
    split_summary: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None


def size_category(n: int) -> str:
    for bound, name in _SIZES:
        if n < bound:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def metadata(source: Source, options: CardOptions) -> dict[str, Any]:
    """The card's YAML header."""
    total = sum(options.split_counts.values())
    spec = source.spec
    tags = ["synthetic", "fountain", "sft", "conversational", *options.tags]
    if privacy_of(source) is not None:
        tags.append("differential-privacy")
    splits = [name for name in ("train", "test") if options.split_counts.get(name)]
    data: dict[str, Any] = {
        "license": options.license,
        "language": list(options.language),
        "task_categories": ["text-generation"],
        "size_categories": [size_category(total)],
        "tags": list(dict.fromkeys(tags)),
        "pretty_name": options.pretty_name or (spec.category if spec is not None else "fountain dataset"),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": SPLIT_FILES[name]} for name in splits],
            }
        ],
        "dataset_info": {
            "features": record_features(source.fmt, weighted=source.weighted, judge=judge_criteria(source))
        },
    }
    return data


def judge_criteria(source: Source) -> list[str] | None:
    """The rubric's criteria when the records carry the judge's verdict (fountain run --judge)."""
    if not any(isinstance((r.get("metadata") or {}).get("judge"), dict) for r in source.records[:1]):
        return None
    section = (source.manifest or {}).get("judge") if isinstance(source.manifest, dict) else None
    criteria = section.get("rubric_criteria") if isinstance(section, dict) else None
    names = [str(c["name"]) for c in criteria or () if isinstance(c, dict) and isinstance(c.get("name"), str)]
    return names or list(source.records[0]["metadata"]["judge"].get("scores") or {})


def privacy_of(source: Source) -> dict[str, Any] | None:
    """The privacy ledger of a PE run (None when PE was not used)."""
    from fountain.report.counts import privacy_section

    if source.figures is not None and source.figures.get("privacy"):
        found: dict[str, Any] = source.figures["privacy"]
        return found
    return privacy_section(source.manifest)


def _fence(text: str, language: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "∞"
        return f"{value:.{digits}g}"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def generation_section(source: Source) -> list[str]:
    manifest, spec = source.manifest, source.spec
    provider = manifest.get("provider") or {}
    counts = manifest.get("counts") or {}
    spec_info = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
    git = (spec_info or {}).get("git") or {}
    framework = manifest.get("framework") or {}
    rows = [
        ("provider", provider.get("provider", "unknown")),
        ("model", provider.get("model") or "unknown"),
        ("framework", framework.get("name") or "Gen"),
        ("rater", framework.get("rater") or "none"),
        ("generated", f"{manifest.get('created_at', '?')} to {manifest.get('updated_at', '?')}"),
        ("status", manifest.get("status", "unknown")),
        ("fountain version", manifest.get("fountain_version", "unknown")),
        ("spec fingerprint", (spec_info or {}).get("fingerprint", "unknown")),
        (
            "spec git commit",
            f"{git.get('commit')}{' (with uncommitted changes)' if git.get('dirty') else ''}"
            if git.get("commit")
            else "not in a git repository",
        ),
    ]
    accepted = counts.get("accepted") or {}
    rejected = counts.get("rejected") or {}
    rows.append(("accepted", ", ".join(f"{v} {k}" for k, v in accepted.items()) or "n/a"))
    rows.append(("rejected", ", ".join(f"{v} {k}" for k, v in rejected.items()) or "none"))
    lines = ["## How it was generated", ""]
    lines.append(
        "Generated with [fountain](https://github.com/fountain/fountain) from a spec folder: "
        "seed conversations written from the spec's prompt and ER diagram along its seed directions, "
        "then derivations that continue a seed's first turns along the derivational directions "
        "(Evol-Instruct style), validated and deduplicated."
    )
    lines += ["", "| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows), ""]
    if spec is None:
        lines += [f"The spec is not included: {source.spec_note}.", ""]
        return lines
    lines += [
        f"**Scene**: {_cell(spec.category)}: the user plays {spec.user_role}, the assistant "
        f"{spec.assistant_role} ({spec.type} data).",
        "",
        "**Seed directions**: " + "; ".join(spec.seed_directions),
        "",
        "**Derivational directions**: " + ("; ".join(spec.derivational_directions) or "none"),
        "",
    ]
    if spec.personas:
        lines += ["**Personas**: " + "; ".join(spec.personas), ""]
    if spec.output.system_message:
        lines += ["**System message** of every conversation: " + _cell(spec.output.system_message), ""]
    lines += ["### The ER diagram of the scene", "", _fence(spec.diagram_text, "mermaid"), ""]
    setup = spec.path.read_text(encoding="utf-8") if spec.path.is_file() else ""
    if setup:
        lines += [
            "<details><summary>The spec (setup.yaml)</summary>",
            "",
            _fence(setup, "yaml"),
            "",
            "</details>",
            "",
        ]
    return lines


def splits_section(options: CardOptions) -> list[str]:
    summary = options.split_summary
    lines = ["## Splits", "", "| split | conversations |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in options.split_counts.items()]
    lines += [
        "",
        "A seed conversation and its derivations (which repeat the seed's first turns) are always in "
        "the same split. "
        f"{summary.get('dropped_near_duplicates', 0)} train conversation(s) were near-duplicates "
        "(word-shingle Jaccard ≥ "
        f"{summary.get('threshold', 0.8)}) of a test conversation and were left out.",
        "",
    ]
    return lines


def quality_section(source: Source) -> list[str]:
    figures = source.figures
    lines = ["## Quality", ""]
    if not figures:
        return lines + ["Not measured (published with --no-report).", ""]
    rows: list[tuple[str, Any]] = []
    structure = figures.get("structure") or {}
    turns = structure.get("turns_per_conversation") or {}
    words = structure.get("words_per_turn") or {}
    rows.append(
        (
            "turns per conversation (mean, min-max)",
            f"{_number(turns.get('mean'))}, {_number(turns.get('min'))}-{_number(turns.get('max'))}",
        )
    )
    for role in ("user", "assistant"):
        rows.append((f"words per {role} turn (median)", _number((words.get(role) or {}).get("median"))))
    overall = (figures.get("diversity") or {}).get("overall") or {}
    for key in (
        "distinct_1",
        "distinct_2",
        "self_bleu",
        "exact_duplicate_rate",
        "minhash_duplicate_rate",
        "mean_pairwise_distance",
    ):
        if key in overall:
            rows.append((key.replace("_", " "), _number(overall.get(key))))
    coverage = (figures.get("grounding") or {}).get("coverage") or {}
    for key in ("entities", "attributes", "relations"):
        if isinstance(coverage.get(key), dict):
            rows.append((f"diagram {key} mentioned", _number(coverage[key].get("coverage"))))
    counts = figures.get("counts") or {}
    if counts.get("acceptance_rate") is not None:
        rows.append(("acceptance rate", _number(counts.get("acceptance_rate"))))
    lines += ["Figures from `fountain report --json` on the published output:", ""]
    lines += ["| metric | value |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows), ""]
    skipped = figures.get("skipped") or []
    if skipped:
        lines += ["Not measured: " + "; ".join(f"{s.get('metric')} ({s.get('reason')})" for s in skipped), ""]
    return lines


def cost_section(source: Source) -> list[str]:
    manifest = source.manifest
    usage = manifest.get("usage") or {}
    cost = manifest.get("cost_usd")
    complete = manifest.get("cost_complete", True)
    elapsed = (manifest.get("timings") or {}).get("elapsed_s")
    lines = ["## Cost", ""]
    if not manifest:
        return lines + ["Unknown (no manifest.json in the output folder).", ""]
    lines.append(
        f"{usage.get('prompt_tokens', 0):,} prompt and {usage.get('completion_tokens', 0):,} completion tokens; "
        f"${_number(cost, 4) if cost is not None else '?'} "
        + ("" if complete else "(incomplete: some model had no known price) ")
        + (f"in {_number(elapsed, 4)} s of generation." if elapsed is not None else "")
    )
    return lines + [""]


def privacy_lines(source: Source) -> list[str]:
    privacy = privacy_of(source)
    if privacy is None:
        return []
    epsilon = privacy.get("epsilon")
    lines = [
        "## Privacy",
        "",
        f"Private Evolution selected which synthetic conversations survive by votes of private real "
        f"conversations, released only as a noisy histogram. Gaussian-DP accountant: "
        f"**(ε = {_number(epsilon, 4)}, δ = {_number(privacy.get('delta'), 3)})**-differential privacy "
        f"after {privacy.get('iterations', '?')} iteration(s)"
        + (f" (budget ε = {_number(privacy.get('epsilon_budget'), 4)})" if privacy.get("epsilon_budget") else "")
        + ".",
        "",
        "What the guarantee covers: the released dataset, with respect to adding or removing one real "
        "conversation of the private data (each appears once; duplicates were refused). What it does "
        "not cover: text in the spec or prompts, what the model knew before, and the private file "
        "itself (never published).",
        "",
    ]
    if epsilon is None:
        lines += ["ε = ∞: no noise was added, so there is **no** guarantee.", ""]
    ledger = privacy.get("ledger") or []
    if ledger:
        lines += ["| iteration | σ | ε after |", "|---|---|---|"]
        lines += [
            f"| {e.get('iteration')} | {_number(e.get('sigma'))} | {_number(e.get('epsilon'), 4)} |" for e in ledger
        ]
        lines.append("")
    return lines


def usage_section(source: Source, options: CardOptions) -> list[str]:
    where = options.repo_id or "path/to/this/folder"
    column = "messages" if source.fmt == "messages" else "conversations"
    lines = [
        "## Use",
        "",
        _fence(
            f'from datasets import load_dataset\n\nds = load_dataset("{where}")\nprint(ds["train"][0]["{column}"])',
            "python",
        ),
        "",
        f"Each record has `{column}` (a chat) and `metadata` (its provenance: seed or derivation, direction, "
        "parent, model, token usage). `dataset_info.json` is a LLaMA-Factory entry and `axolotl.yaml` an "
        "Axolotl dataset block for these files.",
        "",
    ]
    if source.weighted:
        lines += [
            "Assistant messages carry `weight`: 0 on the turns a derivation repeats from its seed "
            "(not to be trained on again), 1 elsewhere (the OpenAI fine-tuning format).",
            "",
        ]
    return lines


def evaluation_lines(options: CardOptions) -> list[str]:
    """What ``fountain evaluate`` measured on this data (its ``evaluation.json``), when it ran."""
    result = options.evaluation
    if not result:
        return []
    lines = ["## Fine-tuning check (`fountain evaluate`)", ""]
    settings = result.get("options") or {}
    lines.append(
        f"{result.get('model', 'a small model')} trained {settings.get('steps', '?')} steps "
        f"(batch {settings.get('batch_size', '?')}, max length {settings.get('max_length', '?')}) "
        f"on {result.get('train_conversations', '?')} conversations; loss per assistant token:"
    )
    lines += [
        "",
        "| measured on | loss before | loss after | perplexity before | perplexity after |",
        "|---|---|---|---|---|",
    ]
    for name in ("test", "real"):
        before = (result.get("before") or {}).get(name) or {}
        after = (result.get("after") or {}).get(name) or {}
        if before and after:
            lines.append(
                f"| {name} | {_number(before.get('loss'))} | {_number(after.get('loss'))} | "
                f"{_number(before.get('perplexity'))} | {_number(after.get('perplexity'))} |"
            )
    return lines + [""]


_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_SECRET_NAMES = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD)")


def scrub_secrets(text: str) -> str:
    """``text`` without the values of secret-looking environment variables (``*_KEY``,
    ``*TOKEN*``, ...) and without credentials inside URLs (``https://user:pass@host``)."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAMES.search(name) and value in text:
            text = text.replace(value, "***")
    return _URL_USERINFO.sub(r"\1***@", text)


def render_card(source: Source, options: CardOptions) -> str:
    """The whole ``README.md`` (secrets scrubbed: see :func:`scrub_secrets`)."""
    header = yaml.safe_dump(metadata(source, options), sort_keys=False, allow_unicode=True)
    title = options.pretty_name or (source.spec.category if source.spec is not None else "fountain dataset")
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    total = sum(options.split_counts.values())
    body = [
        f"# {title}",
        "",
        f"{total} synthetic conversations for supervised fine-tuning, published {today} by `fountain publish`.",
        "",
        *generation_section(source),
        *splits_section(options),
        *quality_section(source),
        *cost_section(source),
        *privacy_lines(source),
        *evaluation_lines(options),
        *usage_section(source, options),
    ]
    return scrub_secrets(f"---\n{header}---\n\n" + "\n".join(body).rstrip() + "\n")
