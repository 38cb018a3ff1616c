"""The report as rich tables in the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape as _markup_escape
from rich.table import Table

from fountain.report.build import Report, format_number, format_pct
from fountain.report.diversity_table import diversity_rows
from fountain.report.judge import print_judge
from fountain.safety import escape_controls


def escape(text: Any) -> str:
    """Rich markup escaped, and control characters shown as escapes: a report shows text that came
    from a model, a server or a spec (stop reasons, reject details, names), never raw ESC codes."""
    return _markup_escape(escape_controls(str(text)))


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell (rich markup escaped)."""
    return escape(format_number(value, digits))


def pct(value: Any) -> str:
    return format_pct(value)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold cyan")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def render(report: Report, console: Console) -> None:
    """Print every section of ``report``."""
    f = report.figures
    source = f["source"]
    console.print(f"[bold]fountain report[/] {escape(source['path'])}")
    console.print(
        f"{source['conversations']:,} conversations ({source['format']}) from "
        f"{escape(source['file'])}; sampled metrics use {source['sample_size']:,} "
        f"(seed {source['seed']})"
    )
    for note in source["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]")
    _counts(f["counts"], console)
    if source.get("empty"):
        top = sorted(f["counts"]["rejected"].items(), key=lambda kv: -kv[1])[:3]
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in top) or "none recorded"
        console.print(
            f"[yellow]the dataset is empty: no conversation to measure; top reject reasons: "
            f"{escape(reasons)} (see rejects.jsonl)[/]"
        )
    if f["structure"] is not None:
        _structure(f["structure"], f.get("real_data"), console)
    if f["diversity"] is not None:
        _diversity(f["diversity"], console)
    _grounding(f["grounding"], console)
    _quality(f.get("quality"), console)
    print_judge(f.get("judge"), console)
    _readability(f["readability"], console)
    _real(f.get("real_data"), console)
    _privacy(f.get("privacy"), console)
    if f["skipped"]:
        console.print("[bold]Skipped[/]")
        for entry in f["skipped"]:
            console.print(f"  - {escape(entry['metric'])}: [dim]{escape(entry['reason'])}[/]")


def _counts(c: dict[str, Any], console: Console) -> None:
    table = _table("Counts", "figure", "value")
    table.add_row("requested", fmt(c["requested"]))
    if c["target"] is not None:
        table.add_row("target", fmt(c["target"]))
    table.add_row("produced (in the dataset)", fmt(c["produced"]))
    table.add_row("count accuracy (produced / target or requested)", pct(c["count_accuracy"]))
    if c["accepted"]:
        for kind, number in c["accepted"].items():
            table.add_row(f"accepted {kind}s", fmt(number))
    table.add_row("rejected", fmt(c["rejected_total"]))
    for reason, number in c["rejected"].items():
        table.add_row(f"  {escape(reason)}", fmt(number))
    utterances = c.get("utterance_rejects") or {}
    if utterances:
        table.add_row("utterances asked again (turn by turn)", fmt(sum(utterances.values())))
        for reason, number in utterances.items():
            table.add_row(f"  {escape(reason)}", fmt(number))
    table.add_row("acceptance rate", pct(c["acceptance_rate"]))
    table.add_row("provider retries", fmt(c["provider_retries"]))
    table.add_row("validation retries", fmt(c["validation_retries"]))
    usage = c["usage"] or {}
    table.add_row("prompt tokens", fmt(usage.get("prompt_tokens")))
    table.add_row("completion tokens", fmt(usage.get("completion_tokens")))
    cost = c["cost_usd"]
    table.add_row(
        "cost (USD)",
        "—"
        if cost is None
        else f"${cost:.4f}" + ("" if c["cost_complete"] is not False else " (some models unpriced)"),
    )
    if c["provider"] or c["model"]:
        table.add_row("provider / model", escape(f"{c['provider'] or '?'} / {c['model'] or '?'}"))
    for model, number in c["models"].items():
        table.add_row(f"  model {escape(model)}", fmt(number))
    if c["status"]:
        table.add_row("run status", escape(c["status"] + (f" ({c['stop_reason']})" if c["stop_reason"] else "")))
    console.print(table)


_STATS = ("n", "mean", "median", "p10", "p90", "min", "max")


def _stat_row(table: Table, label: str, stats: dict[str, Any] | None) -> None:
    stats = stats or {}
    table.add_row(label, *(fmt(stats.get(k), 0 if k == "n" else 1) for k in _STATS))


def _structure(s: dict[str, Any], real: dict[str, Any] | None, console: Console) -> None:
    table = _table("Structure", "distribution", *_STATS)
    _stat_row(table, "turns per conversation", s["turns_per_conversation"])
    _stat_row(table, "words per conversation", s["words_per_conversation"])
    _stat_row(table, "words per user turn", s["words_per_turn"]["user"])
    _stat_row(table, "words per assistant turn", s["words_per_turn"]["assistant"])
    if real:
        _stat_row(table, "real: turns per conversation", real["real_structure"]["turns_per_conversation"])
        _stat_row(table, "real: words per conversation", real["real_structure"]["words_per_conversation"])
    console.print(table)
    if s["empty_messages"] or s["unpaired"]:
        console.print(
            f"[yellow]{s['empty_messages']} empty message(s), {s['unpaired']} conversation(s) "
            "whose user and assistant messages do not pair up[/]"
        )


def _diversity(d: dict[str, Any], console: Console) -> None:
    table = _table(
        "Diversity",
        "group",
        "conv.",
        "distinct-1",
        "distinct-2",
        "distinct-3",
        "self-BLEU",
        "exact dup",
        "MinHash dup",
        "pairwise dist.",
    )

    for row in diversity_rows(d, label=escape, number=fmt):
        table.add_row(*row)
    console.print(table)


def _quality(q: dict[str, Any] | None, console: Console) -> None:
    """Per-turn quality figures, each with its definition and the Janus GPT-4 reference."""
    if not q:
        return
    table = _table(
        "Quality (what a reader objects to; see docs/report.md)", "metric", "value", "good", "Janus GPT-4", "measures"
    )
    for key, d in q["definitions"].items():
        value = q["figures"].get(key)
        shown = fmt(value) if key == "repetition_within" else pct(value)
        ref = fmt(d["janus_gpt4"]) if key == "repetition_within" else pct(d["janus_gpt4"])
        table.add_row(key.replace("_", " "), shown, escape(d["good"]), ref, f"[dim]{escape(d['measures'])}[/]")
    console.print(table)
    for warning in q.get("warnings") or ():
        console.print(f"[bold red]WARNING: {escape(warning)}[/]")


def _grounding(g: dict[str, Any] | None, console: Console) -> None:
    if not g:
        return
    cov = g.get("coverage")
    if cov:
        table = _table(
            "Grounding: diagram coverage" + (f" ({escape(g['spec'])})" if g.get("spec") else ""),
            "item",
            "conversations mentioning",
        )
        for kind in ("entities", "attributes", "relations", "notes"):
            part = cov[kind]
            if not part["total"]:
                continue
            table.add_row(f"[bold]{kind}[/]", f"[bold]{part['mentioned']}/{part['total']} = {pct(part['coverage'])}[/]")
            for item in part["items"]:
                table.add_row(f"  {escape(item['name'][:70])}", f"{item['conversations']:,} ({pct(item['fraction'])})")
        table.add_row("[bold]overall[/]", f"[bold]{pct(cov['overall']['coverage'])}[/]")
        console.print(table)
    rc = g["role_consistency"]
    roles: dict[str, Any] = {"user": g.get("user_role"), "assistant": g.get("assistant_role")}
    table = _table(
        "Role consistency (heuristic; see docs/report.md)",
        "role",
        "turns",
        "in role",
        "reads as the other role",
        "reads as own role",
    )
    for role in ("user", "assistant"):
        r = rc[role]
        name = role + (f" ({escape(roles[role])})" if roles[role] else "")
        table.add_row(name, fmt(r["n"]), pct(r["in_role"]), pct(r["reads_as_other"]), pct(r["reads_as_own"]))
    console.print(table)


def _readability(r: dict[str, Any] | None, console: Console) -> None:
    if not r:
        return
    table = _table(
        f"Readability ({r['backend']}, {r['conversations']:,} conversations)",
        "role",
        "Flesch ease mean",
        "median",
        "FK grade mean",
        "median",
    )
    for role in ("user", "assistant"):
        ease, grade = r[role]["flesch_reading_ease"], r[role]["flesch_kincaid_grade"]
        table.add_row(
            role, fmt(ease["mean"], 1), fmt(ease["median"], 1), fmt(grade["mean"], 1), fmt(grade["median"], 1)
        )
    console.print(table)
    if r.get("note"):
        console.print(f"[dim]note: {escape(r['note'])}[/]")


def _real(r: dict[str, Any] | None, console: Console) -> None:
    if not r:
        return
    table = _table(f"Against the real data ({r['conversations']:,} real conversations)", "figure", "value")
    for key, label in (
        ("turns", "turns per conversation"),
        ("words", "words per conversation"),
        ("user_words", "words per user turn"),
        ("assistant_words", "words per assistant turn"),
    ):
        if key in r["ks"]:
            ks = r["ks"][key]
            p = "" if ks["pvalue"] is None else f" (p = {ks['pvalue']:.3g})"
            table.add_row(f"KS statistic: {label}", fmt(ks["statistic"]) + p)
    if "embedded" in r:
        table.add_row("embedded (synthetic / real)", f"{r['embedded']['synthetic']:,} / {r['embedded']['real']:,}")
        table.add_row("Fréchet distance", fmt(r.get("frechet_distance"), 4))
        table.add_row(f"k-NN precision (k={r.get('knn_k')})", pct(r.get("knn_precision")))
        table.add_row(f"k-NN recall (k={r.get('knn_k')})", pct(r.get("knn_recall")))
        table.add_row(
            f"memorisation (nearest real cosine > {r['memorisation_threshold']})", pct(r["memorisation_rate"])
        )
        table.add_row("nearest real cosine: median", fmt(r["nearest_real_similarity"]["median"]))
    console.print(table)
    if r.get("memorised_ids"):
        console.print("[yellow]near-copies of real conversations: " + escape(", ".join(r["memorised_ids"])) + "[/]")


def _small(value: Any) -> str:
    # delta is tiny (1e-5 and below): scientific notation, not "0.000".
    return f"{value:.3g}" if isinstance(value, float) else fmt(value)


def _privacy(p: dict[str, Any] | None, console: Console) -> None:
    if not p:
        return
    budget = f", budget {fmt(p.get('epsilon_budget'), 4)}" if p.get("epsilon_budget") is not None else ""
    console.print(
        f"[bold]Privacy ledger[/]: epsilon spent {fmt(p.get('epsilon'), 4)}, delta {_small(p.get('delta'))}{budget}"
    )
    if p["ledger"]:
        keys = [k for k in ("iteration", "sigma", "mu", "epsilon", "delta") if any(k in e for e in p["ledger"])]
        table = _table("", *keys)
        for entry in p["ledger"]:
            table.add_row(*(_small(entry.get(k)) if k == "delta" else fmt(entry.get(k), 4) for k in keys))
        console.print(table)
