"""The report's "Judge" section: what ``fountain run --judge`` recorded (docs/judge.md).

From ``manifest.json``'s ``judge`` section (every conversation judged, rejects included): the judge,
the rubric, the threshold, conversations judged, rejects per criterion, the mean score per
criterion, requests and cost (and its share of the run's total). From the dataset's records
(``metadata.judge``): the mean score per criterion of what was kept. Untrusted input: anything
of the wrong type is left out, never a crash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _numbers(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out = {str(k): _number(v) for k, v in value.items()}
    return {k: v for k, v in out.items() if v is not None}


def kept_means(items: Sequence[Any]) -> tuple[dict[str, float], int]:
    """Mean score per criterion (and ``overall``) over the records' ``metadata.judge``; how many had one."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    judged = 0
    for item in items:
        meta = getattr(item, "metadata", None) or {}
        verdict = meta.get("judge") if isinstance(meta, dict) else None
        if not isinstance(verdict, dict):
            continue
        judged += 1
        scores = _numbers(verdict.get("scores"))
        overall = _number(verdict.get("overall"))
        if overall is not None:
            scores["overall"] = overall
        for name, score in scores.items():
            sums[name] = sums.get(name, 0.0) + score
            counts[name] = counts.get(name, 0) + 1
    return {k: round(sums[k] / counts[k], 3) for k in sums}, judged


def judge_section(manifest: dict[str, Any] | None, items: Sequence[Any]) -> dict[str, Any] | None:
    """The Judge section's figures, or None when the run had no judge."""
    kept, kept_judged = kept_means(items)
    section = (manifest or {}).get("judge")
    if not isinstance(section, dict) and not kept_judged:
        return None
    section = section if isinstance(section, dict) else {}
    criteria = [
        {"name": str(c.get("name")), "description": str(c.get("description") or "")}
        for c in section.get("rubric_criteria") or ()
        if isinstance(c, dict) and c.get("name")
    ]
    names = [c["name"] for c in criteria] or sorted(k for k in kept if k != "overall")
    cost = _number(section.get("cost_usd"))
    total = _number((manifest or {}).get("cost_usd"))
    return {
        "judge": f"{section.get('provider') or '?'}:{section.get('model') or '?'}" if section else None,
        "rubric": section.get("rubric"),
        "threshold": _number(section.get("threshold")),
        "criteria": criteria,
        "names": names,
        "judged": _number(section.get("judged")),
        "rejected": _numbers(section.get("rejected")),
        "mean_all": _numbers(section.get("mean")),
        "mean_kept": kept,
        "kept_judged": kept_judged,
        "requests": _number(section.get("requests")),
        "cache_hits": _number(section.get("cache_hits")),
        "cost_usd": cost,
        "cost_share": cost / total if cost is not None and total else None,
    }


def _score(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


def rows(section: dict[str, Any]) -> list[list[str]]:
    """criterion, mean (all judged), mean (kept), rejects: plain text cells."""
    out = []
    for name in [*section["names"], "overall"]:
        rejected = section["rejected"].get(name)
        out.append(
            [
                name,
                _score(section["mean_all"].get(name)),
                _score(section["mean_kept"].get(name)),
                "" if name == "overall" else str(int(rejected or 0)),
            ]
        )
    if section["rejected"].get("malformed"):
        out.append(["malformed (no usable verdict)", "", "", str(int(section["rejected"]["malformed"]))])
    return out


def summary(section: dict[str, Any]) -> str:
    """One line: judge, threshold, judged, requests, cost."""
    parts = [f"judge {section['judge'] or '(unknown)'}"]
    if section["threshold"] is not None:
        parts.append(f"threshold {int(section['threshold'])} on 1-5")
    if section["judged"] is not None:
        parts.append(f"{int(section['judged']):,} conversations judged")
    if section["requests"] is not None:
        hits = f", {int(section['cache_hits'] or 0):,} from the cache" if section["cache_hits"] else ""
        parts.append(f"{int(section['requests']):,} requests{hits}")
    if section["cost_usd"] is not None:
        share = f" ({section['cost_share']:.0%} of the run)" if section["cost_share"] is not None else ""
        parts.append(f"${section['cost_usd']:.4f}{share}")
    return "; ".join(parts)


def print_judge(section: dict[str, Any] | None, console: Any) -> None:
    """The terminal table (rich)."""
    if not section:
        return
    from rich.markup import escape as markup
    from rich.table import Table

    from fountain.safety import escape_controls

    table = Table(title="Judge (see docs/judge.md)", title_justify="left", title_style="bold", header_style="bold cyan")
    for index, column in enumerate(("criterion", "mean, all judged", "mean, kept", "rejects")):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows(section):
        table.add_row(*(markup(escape_controls(cell)) for cell in row))
    console.print(table)
    console.print(f"[dim]{markup(escape_controls(summary(section)))}[/]")


def judge_html(section: dict[str, Any] | None) -> str:
    """The HTML section (empty without a judge)."""
    if not section:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("criterion", "mean, all judged", "mean, kept", "rejects"))
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows(section))
    rubric = "".join(f"<li><b>{escape(c['name'])}</b>: {escape(c['description'])}</li>" for c in section["criteria"])
    return (
        f'<h2 id="judge">Judge</h2><p>{escape(summary(section))}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (f"<p class=muted>Rubric (scores 1-5):</p><ul class=muted>{rubric}</ul>" if rubric else "")
    )
