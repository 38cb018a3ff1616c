"""Private Evolution with the votes cast at the data owners' edges (``--edge URL``), a part of
:class:`~fountain.frameworks.runner._Runner`: the DP histogram comes from
:mod:`fountain.edge.client` instead of private data held here.

Each iteration sends the SYNTHETIC population to every edge, sums the noisy histograms they return,
clips at ``H = 2 * sqrt(sum sigma_i^2)`` (or the spec's threshold) and selects exactly as the local
rater does. What each edge spent is recorded in ``framework.json`` as soon as it answers, and in the
manifest's ``privacy`` section: one entry per edge and vote, with the epsilon the edge reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fountain.types import Sample

if TYPE_CHECKING:
    from fountain.frameworks.plan import FrameworkPlan


def _turn_messages(sample: Sample) -> list[dict[str, str]]:
    return [m for m in sample.messages() if m["role"] != "system"]


class _EdgeVotes:
    """The edge source of the DP histogram (a mixin: it uses the runner's plan and state)."""

    _edges: list[Any] | None = None
    if TYPE_CHECKING:  # provided by the runner and its other parts
        plan: FrameworkPlan
        state: dict[str, Any]

        def _save_state(self) -> None: ...
        def _write_privacy(self) -> None: ...
        def _rng(self) -> Any: ...

    def _edge_clients(self) -> list[Any]:
        from fountain.edge.client import EdgeClient

        if self._edges is None:
            self._edges = [EdgeClient(url, index=i + 1) for i, url in enumerate(self.plan.edges)]
        return self._edges

    def _open_edge_ledger(self, releases_left: int) -> None:
        """Before any token is spent: every edge is reachable, accepts the token, and has budget
        for the votes this run still needs (the edges enforce it again at each vote)."""
        from fountain.edge.client import check_budgets

        check_budgets(self._edge_clients(), max(0, releases_left))
        self._write_privacy()

    def _edge_select(self, iteration: int, groups: dict[str, list[Sample]], n_select: dict[str, int]) -> dict[str, Any]:
        """Ask every edge for the noisy histogram of ``groups`` (category -> synthetic samples),
        sum them, clip and select; returns category -> CategorySelection."""
        import numpy as np

        from fountain.edge.client import ask_edges
        from fountain.raters.pe import CategorySelection, Histogram, default_threshold, select_from_histogram

        def spent(receipt: dict[str, Any]) -> None:
            self.state.setdefault("ledger", []).append({"iteration": iteration, **receipt})
            self._save_state()
            self._write_privacy()

        conversations = {category: [_turn_messages(s) for s in samples] for category, samples in groups.items()}
        combined = ask_edges(self._edge_clients(), conversations, self.plan.k, on_receipt=spent)
        threshold = default_threshold(combined.sigma) if self.plan.threshold is None else self.plan.threshold
        rng = self._rng()
        outcome = {}
        for category, noisy in combined.histograms.items():
            # The raw counts never leave the edges: NaN says so.
            histogram = Histogram(np.full(len(noisy), np.nan), noisy, np.maximum(noisy - threshold, 0.0))
            indices, fallback = select_from_histogram(histogram, n_select[category], self.plan.selection, rng=rng)
            outcome[category] = CategorySelection(indices, histogram, fallback)
        return outcome

    def edge_privacy_section(self) -> dict[str, Any]:
        """The manifest's ``privacy`` for an edge run: per edge, its votes and the epsilon it reported.
        Each owner's guarantee is its own (epsilon, delta) over its own records."""
        entries = [dict(e) for e in self.state.get("ledger", []) if "edge" in e]
        edges: dict[str, dict[str, Any]] = {}
        for url in self.plan.edges:
            from fountain.edge.client import public_url

            edges[public_url(url)] = {"edge": public_url(url), "votes": []}
        for entry in entries:
            info = edges.setdefault(entry["edge"], {"edge": entry["edge"], "votes": []})
            info.update({k: entry[k] for k in ("edge_id", "epsilon", "epsilon_budget", "delta", "sigma")})
            info["votes"].append({"iteration": entry["iteration"], "vote": entry["vote"], "epsilon": entry["epsilon"]})
        spent = [e for e in edges.values() if "epsilon" in e]
        threshold = self.plan.threshold
        return {
            "rater": "PE",
            "source": "edge",
            "accountant": "gaussian-dp, per edge",
            "guarantee": "each edge's (epsilon, delta) covers that owner's records only, from its own noise",
            "epsilon": max((e["epsilon"] for e in spent), default=0.0),
            "delta": max((e["delta"] for e in spent), default=None),
            "iterations_planned": self.plan.iterations,
            "k": self.plan.k,
            "threshold_H": threshold if threshold is not None else "2 x sqrt(sum of the edges' sigma^2)",
            "selection": self.plan.selection,
            "edges": list(edges.values()),
            "ledger": entries,
        }
