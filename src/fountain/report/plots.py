"""The report's figures (matplotlib, rendered to inline PNGs) and where they go in the page."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from html import escape
from typing import Any

from fountain.report.build import Report


class _Plotter:
    """Figures rendered with matplotlib's Agg backend to PNG data URIs."""

    def __init__(self) -> None:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        self.plt = plt

    def render(self, draw: Callable[[Any], None], width: float = 5.2, height: float = 3.2) -> str:
        fig, ax = self.plt.subplots(figsize=(width, height), dpi=100)
        try:
            draw(ax)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
        finally:
            self.plt.close(fig)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _hist(
    series: dict[str, list[float]], xlabel: str, integer: bool = False, bounds: tuple[float, float] | None = None
) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        import numpy as np

        values = [v for data in series.values() for v in data]
        top = float(np.percentile(values, 99)) if values else 1.0
        low = float(min(values)) if values else 0.0
        if bounds is not None:
            bins = np.linspace(bounds[0], bounds[1], 30)
        elif integer:
            bins = np.arange(low - 0.5, max(top, low) + 1.5, 1.0)
        else:
            bins = np.linspace(low, max(top, low + 1.0), 30)
        normalise = len(series) > 1  # different sizes: compare shapes, not counts
        for label, data in series.items():
            if data:
                ax.hist(np.clip(data, None, bins[-1]), bins=bins, alpha=0.55, label=label, density=normalise)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share" if normalise else "count")
        if integer:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(series) > 1:
            ax.legend()

    return draw


def _barh(labels: list[str], values: list[float], xlabel: str, limit: float | None = None) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        shown = [label if len(label) <= 40 else label[:37] + "…" for label in labels]
        ax.barh(range(len(values)), values, color="#4c78a8")
        ax.set_yticks(range(len(values)))
        ax.set_yticklabels(shown, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        if limit is not None:
            ax.set_xlim(0, limit)
        elif all(float(v).is_integer() for v in values):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return draw


def _plots(report: Report, plotter: _Plotter) -> dict[str, list[tuple[str, str]]]:
    """Section name -> [(data URI, caption)]."""
    f, raw = report.figures, report.raw
    synthetic, real = raw["synthetic"], raw.get("real")
    out: dict[str, list[tuple[str, str]]] = {}

    def with_real(key: str) -> dict[str, list[float]]:
        series = {"synthetic": synthetic[key]}
        if real and real.get(key):
            series["real"] = real[key]
        return series

    if f["structure"] is None:  # an empty dataset: nothing to plot but its rejections
        synthetic = None
    out["structure"] = (
        []
        if synthetic is None
        else [
            (
                plotter.render(_hist(with_real("turns"), "turns per conversation", integer=True)),
                "Turns per conversation",
            ),
            (plotter.render(_hist(with_real("words"), "words per conversation")), "Words per conversation"),
            (
                plotter.render(
                    _hist(
                        {"user": synthetic["user_words"], "assistant": synthetic["assistant_words"]}, "words per turn"
                    )
                ),
                "Words per turn, by role (shares)",
            ),
        ]
    )
    rejected = f["counts"]["rejected"]
    if rejected:
        out["counts"] = [
            (
                plotter.render(
                    _barh(list(rejected), list(rejected.values()), "rejected samples"),
                    height=max(2.0, 0.35 * len(rejected) + 1),
                ),
                "Rejections by reason",
            )
        ]
    groups = [
        (f"{key[3:]}: {label}", m)
        for key in ("by_kind", "by_direction")
        for label, m in ((f["diversity"] or {}).get(key) or {}).items()
    ]
    if groups:
        labels = ["all"] + [label for label, _ in groups]
        rows = [f["diversity"]["overall"]] + [m for _, m in groups]
        height = max(2.2, 0.35 * len(labels) + 1)
        out["diversity"] = [
            (
                plotter.render(_barh(labels, [m["distinct_2"] or 0.0 for m in rows], "distinct-2", 1.0), height=height),
                "Distinct-2 by group (higher: more varied wording)",
            ),
            (
                plotter.render(_barh(labels, [m["self_bleu"] or 0.0 for m in rows], "self-BLEU", 1.0), height=height),
                "Self-BLEU by group (higher: more alike)",
            ),
        ]
    coverage = (f.get("grounding") or {}).get("coverage")
    if coverage:
        items = [
            (f"{kind[:-1] if kind != 'entities' else 'entity'}: {item['name']}", item["fraction"])
            for kind in ("entities", "attributes", "relations", "notes")
            for item in coverage[kind]["items"]
        ]
        if items:
            out["grounding"] = [
                (
                    plotter.render(
                        _barh(
                            [n for n, _ in items], [v for _, v in items], "share of conversations mentioning it", 1.0
                        ),
                        width=6.5,
                        height=max(2.2, 0.3 * len(items) + 1),
                    ),
                    "Diagram items: share of conversations that mention each",
                )
            ]
    nearest = raw.get("nearest_real_similarity")
    if nearest:
        threshold = f["real_data"]["memorisation_threshold"]

        def draw(ax: Any) -> None:
            low = max(-1.0, min(min(nearest), threshold) - 0.05)
            _hist({"synthetic": nearest}, "cosine similarity to the nearest real conversation", bounds=(low, 1.0))(ax)
            ax.axvline(threshold, color="#c0392b", linestyle="--", label=f"memorisation > {threshold}")
            ax.legend()

        out["real"] = [(plotter.render(draw), "Nearest real neighbour similarity")]
    return out


def _figures_html(plots: dict[str, list[tuple[str, str]]], section: str) -> str:
    return "".join(
        f'<figure><img src="{uri}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
        for uri, caption in plots.get(section, [])
    )


# --- sections -------------------------------------------------------------------------------------
