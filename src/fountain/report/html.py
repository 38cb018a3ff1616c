"""The report as one self-contained HTML file: inline CSS, plots as base64 PNG data URIs, no script.

It opens from disk in any browser with no server and no network: nothing external is referenced.
All text from the dataset is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from fountain.errors import OutputError
from fountain.report.build import Report, format_number, format_pct
from fountain.report.diversity_table import diversity_rows
from fountain.report.evaluation import evaluation_html
from fountain.report.judge import judge_html
from fountain.report.load import Item
from fountain.report.plots import _figures_html, _plots, _Plotter

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5rem;color:#1d2330;background:#fff;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #e3e7ef;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #dde2ea;padding:.25rem .55rem;text-align:right;vertical-align:top}
th{background:#f1f4f9}td:first-child,th:first-child{text-align:left}
.muted{color:#667085}.warn{color:#a15c00}
figure{margin:.8rem 0;display:inline-block;vertical-align:top}figure img{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#667085}
details{border:1px solid #dde2ea;border-radius:6px;margin:.45rem 0;padding:.3rem .7rem}
summary{cursor:pointer;font-weight:600}
.msg{margin:.45rem 0;padding:.45rem .7rem;border-radius:6px;white-space:pre-wrap;word-wrap:break-word}
.user{background:#eef4ff}.assistant{background:#f3f8ef}.system{background:#f6f0fb}
.role{font-size:.75rem;font-weight:700;text-transform:uppercase;color:#475467;display:block}
.prov td{font-size:.8rem}
"""


def _num(value: Any, digits: int = 3) -> str:
    return escape(format_number(value, digits))


def _pct(value: Any) -> str:
    return format_pct(value)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- plots ------------------------------------------------------------------------------------


def _counts_html(c: dict[str, Any]) -> str:
    rows = [
        ["requested", _num(c["requested"])],
        ["target", _num(c["target"])],
        ["produced (in the dataset)", _num(c["produced"])],
        ["count accuracy (produced / target or requested)", _pct(c["count_accuracy"])],
    ]
    rows += [[f"accepted {escape(kind)}s", _num(n)] for kind, n in (c["accepted"] or {}).items()]
    rows += [["rejected", _num(c["rejected_total"])]]
    rows += [[f"&nbsp;&nbsp;{escape(reason)}", _num(n)] for reason, n in c["rejected"].items()]
    usage = c["usage"] or {}
    rows += [
        ["acceptance rate", _pct(c["acceptance_rate"])],
        ["provider retries", _num(c["provider_retries"])],
        ["validation retries", _num(c["validation_retries"])],
        ["prompt tokens", _num(usage.get("prompt_tokens"))],
        ["completion tokens", _num(usage.get("completion_tokens"))],
        ["cost (USD)", "—" if c["cost_usd"] is None else f"${c['cost_usd']:.4f}"],
        ["provider / model", escape(f"{c['provider'] or '—'} / {c['model'] or '—'}")],
    ]
    rows += [[f"model {escape(m)}", _num(n)] for m, n in c["models"].items()]
    return _table(["figure", "value"], rows)


_STATS = ("n", "mean", "median", "p10", "p90", "min", "max")


def _structure_html(s: dict[str, Any], real: dict[str, Any] | None) -> str:
    def row(label: str, stats: dict[str, Any]) -> list[str]:
        return [escape(label)] + [_num(stats.get(k), 0 if k == "n" else 1) for k in _STATS]

    rows = [
        row("turns per conversation", s["turns_per_conversation"]),
        row("words per conversation", s["words_per_conversation"]),
        row("words per user turn", s["words_per_turn"]["user"]),
        row("words per assistant turn", s["words_per_turn"]["assistant"]),
    ]
    if real:
        rows += [
            row("real: turns per conversation", real["real_structure"]["turns_per_conversation"]),
            row("real: words per conversation", real["real_structure"]["words_per_conversation"]),
        ]
    return _table(["distribution", *_STATS], rows)


def _diversity_html(d: dict[str, Any]) -> str:
    rows = diversity_rows(d, label=escape, number=_num)
    return _table(
        [
            "group",
            "conversations",
            "distinct-1",
            "distinct-2",
            "distinct-3",
            "self-BLEU",
            "exact dup",
            "MinHash dup",
            "mean pairwise distance",
        ],
        rows,
    )


def _grounding_html(g: dict[str, Any] | None) -> str:
    if not g:
        return ""
    parts = []
    cov = g.get("coverage")
    if cov:
        rows = []
        for kind in ("entities", "attributes", "relations", "notes"):
            part = cov[kind]
            if part["total"]:
                rows.append(
                    [f"<b>{kind}</b>", f"<b>{part['mentioned']}/{part['total']} = {_pct(part['coverage'])}</b>"]
                )
                rows += [[escape(i["name"]), f"{i['conversations']:,} ({_pct(i['fraction'])})"] for i in part["items"]]
        rows.append(["<b>overall</b>", f"<b>{_pct(cov['overall']['coverage'])}</b>"])
        parts.append(f"<p class=muted>Diagram of {escape(g.get('spec') or 'the given diagram')}.</p>")
        parts.append(_table(["item", "conversations mentioning"], rows))
    rc = g["role_consistency"]
    rows = []
    for role in ("user", "assistant"):
        r = rc[role]
        name = g.get(f"{role}_role")
        rows.append(
            [
                escape(role + (f" ({name})" if name else "")),
                _num(r["n"]),
                _pct(r["in_role"]),
                _pct(r["reads_as_other"]),
                _pct(r["reads_as_own"]),
            ]
        )
    parts.append(
        "<h3>Role consistency</h3><p class=muted>A heuristic on each turn's style (asking and "
        "talking about oneself vs advising and addressing the other), not on meaning.</p>"
    )
    parts.append(_table(["role", "turns", "in role", "reads as the other role", "reads as own role"], rows))
    return "".join(parts)


def _quality_html(q: dict[str, Any] | None) -> str:
    """The quality figures with their definitions, the Janus GPT-4 reference and the warnings."""
    if not q:
        return "<p class=muted>Not measured.</p>"
    rows = []
    for key, d in q["definitions"].items():
        value = q["figures"].get(key)
        scalar = key == "repetition_within"
        rows.append(
            [
                escape(key.replace("_", " ")),
                _num(value) if scalar else _pct(value),
                escape(d["good"]),
                _num(d["janus_gpt4"]) if scalar else _pct(d["janus_gpt4"]),
                f"<span class=muted>{escape(d['measures'])}</span>",
            ]
        )
    warnings = "".join(f"<li><b>WARNING: {escape(w)}</b></li>" for w in q.get("warnings") or ())
    table = _table(["metric", "value", "good", "Janus GPT-4", "measures"], rows)
    return table + (f"<ul>{warnings}</ul>" if warnings else "")


def _readability_html(r: dict[str, Any] | None) -> str:
    if not r:
        return "<p class=muted>Skipped (see below).</p>"
    rows = []
    for role in ("user", "assistant"):
        ease, grade = r[role]["flesch_reading_ease"], r[role]["flesch_kincaid_grade"]
        rows.append(
            [role, _num(ease["mean"], 1), _num(ease["median"], 1), _num(grade["mean"], 1), _num(grade["median"], 1)]
        )
    note = f"<p class=muted>{escape(r['note'])}</p>" if r.get("note") else ""
    return _table(["role", "Flesch reading ease: mean", "median", "Flesch–Kincaid grade: mean", "median"], rows) + note


def _real_html(r: dict[str, Any] | None) -> str:
    if not r:
        return "<p class=muted>No real data given (--real-data FILE).</p>"
    rows = []
    for key, label in (
        ("turns", "turns per conversation"),
        ("words", "words per conversation"),
        ("user_words", "words per user turn"),
        ("assistant_words", "words per assistant turn"),
    ):
        if key in r["ks"]:
            ks = r["ks"][key]
            p = "" if ks["pvalue"] is None else f" (p = {ks['pvalue']:.3g})"
            rows.append([f"KS statistic: {label}", _num(ks["statistic"]) + p])
    if "embedded" in r:
        rows += [
            ["embedded (synthetic / real)", f"{r['embedded']['synthetic']:,} / {r['embedded']['real']:,}"],
            ["Fréchet distance", _num(r.get("frechet_distance"), 4)],
            [f"k-NN precision (k={r.get('knn_k')})", _pct(r.get("knn_precision"))],
            [f"k-NN recall (k={r.get('knn_k')})", _pct(r.get("knn_recall"))],
            [
                f"memorisation rate (nearest real cosine &gt; {r['memorisation_threshold']})",
                _pct(r["memorisation_rate"]),
            ],
        ]
    extra = ""
    if r.get("memorised_ids"):
        extra = (
            "<p class=warn>Synthetic conversations that nearly copy a real one: "
            + escape(", ".join(r["memorised_ids"]))
            + "</p>"
        )
    return (
        f"<p>{r['conversations']:,} real conversations (never quoted here).</p>"
        + _table(["figure", "value"], rows)
        + extra
    )


def _privacy_html(p: dict[str, Any] | None) -> str:
    if not p:
        return "<p class=muted>No privacy ledger: Private Evolution was not used.</p>"
    head = (
        f"<p>epsilon spent: <b>{_num(p.get('epsilon'), 4)}</b>, delta {escape(str(p.get('delta')))}"
        + (f", budget {_num(p.get('epsilon_budget'), 4)}" if p.get("epsilon_budget") is not None else "")
        + f", {p['iterations']} iteration(s)</p>"
    )
    keys = [k for k in ("iteration", "sigma", "mu", "epsilon", "delta") if any(k in e for e in p["ledger"])]
    rows = [[escape(str(e.get(k))) if k == "delta" else _num(e.get(k), 4) for k in keys] for e in p["ledger"]]
    return head + (_table(keys, rows) if rows else "")


_PROVENANCE_KEYS = (
    "id",
    "kind",
    "direction",
    "category",
    "type",
    "parent_id",
    "prefix_turns",
    "provider",
    "model",
    "prompt_hash",
    "usage",
    "spec_fingerprint",
    "persona",
    "iteration",
    "attempt",
)


def _conversation_html(item: Item) -> str:
    meta = item.metadata
    label = " · ".join(escape(str(v)) for v in (item.id, item.kind, item.direction) if v)
    summary = f"{label} — {len(item.turns)} turn(s)"
    keys = [k for k in _PROVENANCE_KEYS if meta.get(k) not in (None, "")]
    keys += sorted(k for k in meta if k not in _PROVENANCE_KEYS)
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(_plain(meta[k]))}</td></tr>" for k in keys)
    provenance = f'<table class="prov">{rows}</table>' if rows else "<p class=muted>no provenance</p>"
    messages = "".join(
        f'<div class="msg {role}"><span class="role">{role}</span>{escape(content)}</div>'
        for role, content in item.messages
    )
    return f"<details><summary>{summary}</summary>{provenance}{messages}</details>"


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_html(report: Report) -> tuple[str, list[str]]:
    """The page's HTML and notes on what it left out (plots without matplotlib)."""
    notes: list[str] = []
    try:
        plots = _plots(report, _Plotter())
    except ImportError:
        plots = {}
        notes.append("plots skipped: matplotlib is not installed (pip install 'fountain[report]')")
    f = report.figures
    source = f["source"]
    skipped = [f"<li><b>{escape(s['metric'])}</b>: {escape(s['reason'])}</li>" for s in f["skipped"]]
    skipped += [f"<li>{escape(n)}</li>" for n in notes]
    notes_html = "".join(f"<li>{escape(n)}</li>" for n in source["notes"])
    browse = "".join(_conversation_html(item) for item in report.browse)
    body = f"""
<h1>fountain report</h1>
<p>{escape(source["path"])}<br><span class=muted>{source["conversations"]:,} conversations
({escape(source["format"])}) from {escape(source["file"])}; sampled metrics use {source["sample_size"]:,}
(seed {source["seed"]}).</span></p>
{f"<ul class=muted>{notes_html}</ul>" if notes_html else ""}
<h2 id="counts">Counts</h2>{_counts_html(f["counts"])}{_figures_html(plots, "counts")}
{"<p><b>The dataset is empty</b>: no conversation to measure; the counts above show why.</p>" if source.get("empty") else ""}
<h2 id="structure">Structure</h2>{_structure_html(f["structure"], f.get("real_data")) if f["structure"] else ""}{_figures_html(plots, "structure")}
<h2 id="diversity">Diversity</h2>{_diversity_html(f["diversity"]) if f["diversity"] else ""}{_figures_html(plots, "diversity")}
<h2 id="grounding">Grounding</h2>{_grounding_html(f.get("grounding"))}{_figures_html(plots, "grounding")}
<h2 id="quality">Quality</h2>{_quality_html(f.get("quality"))}
{judge_html(f.get("judge"))}
<h2 id="readability">Readability</h2>{_readability_html(f.get("readability"))}
<h2 id="real">Against the real data</h2>{_real_html(f.get("real_data"))}{_figures_html(plots, "real")}
<h2 id="privacy">Privacy ledger</h2>{_privacy_html(f.get("privacy"))}
{evaluation_html(report.dataset.folder)}
<h2 id="skipped">Skipped</h2>{"<ul>" + "".join(skipped) + "</ul>" if skipped else "<p>Nothing.</p>"}
<h2 id="conversations">Conversations ({len(report.browse):,} of {source["conversations"]:,}, random)</h2>
<div id="browse">{browse}</div>
"""
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fountain report: {escape(Path(source['path']).name)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
    return page, notes


def write_html(report: Report, path: str | Path) -> list[str]:
    """Write the self-contained HTML page to ``path``; returns notes on what it left out."""
    page, notes = render_html(report)
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as error:
        raise OutputError(
            f"cannot write the HTML report: {error.strerror or error}",
            location=str(target),
            hint="choose a writable path with --html",
        ) from None
    return notes
