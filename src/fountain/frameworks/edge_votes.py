"""Private Evolution with the votes cast at the data owners' edges (``--edge URL``), for
a run's :class:`~fountain.frameworks.privacy_account.PrivacyAccount`: the DP histogram comes from
:mod:`fountain.edge.client` instead of private data held here.

Each iteration sends the SYNTHETIC population to every edge, sums the noisy histograms they return,
clips at ``H = 2 * sqrt(sum sigma_i^2)`` (or the spec's threshold) and selects exactly as the local
rater does. What each edge spent is recorded in ``framework.json`` as soon as it answers, and in the
manifest's ``privacy`` section: one entry per edge and vote, with the epsilon the edge reported.

Functions of the privacy account (``account``: its run context's plan and state, and the manifest's
privacy section), called from :mod:`.feedback` and :mod:`.privacy_account` behind ``uses_edges(plan)``.
"""

from __future__ import annotations

from typing import Any

from fountain.types import Sample


def uses_edges(plan: Any) -> bool:
    """True when the run's PE votes come from edge services."""
    return bool(getattr(plan, "edges", ()))


def _turn_messages(sample: Sample) -> list[dict[str, str]]:
    return [m for m in sample.messages() if m["role"] != "system"]


def _clients(account: Any) -> list[Any]:
    from fountain.edge.client import EdgeClient

    clients = getattr(account, "_edge_clients", None)
    if clients is None:
        clients = [EdgeClient(url, index=i + 1) for i, url in enumerate(account.ctx.plan.edges)]
        account._edge_clients = clients
    return clients


def open_edge_ledger(account: Any, releases_left: int) -> None:
    """Before any token is spent: every edge is reachable, accepts the token, and has budget
    for the votes this run still needs (the edges enforce it again at each vote)."""
    from fountain.edge.client import check_budgets

    check_budgets(_clients(account), max(0, releases_left))
    account._write()


def edge_select(
    account: Any, rng: Any, iteration: int, groups: dict[str, list[Sample]], n_select: dict[str, int]
) -> dict[str, Any]:
    """Ask every edge for the noisy histogram of ``groups`` (category -> synthetic samples), sum
    them, clip and select; returns category -> :class:`~fountain.raters.pe.CategorySelection`."""
    import numpy as np

    from fountain.edge.client import ask_edges, check_budgets
    from fountain.raters.pe import CategorySelection, Histogram, default_threshold, select_from_histogram

    def spent(receipt: dict[str, Any]) -> None:
        account.ctx.state.setdefault("ledger", []).append({"iteration": iteration, **receipt})
        account.ctx.save_state()
        account._write()

    plan = account.ctx.plan
    conversations = {category: [_turn_messages(s) for s in samples] for category, samples in groups.items()}
    # Every edge must still have a vote left before any is spent: with several owners, one that
    # is out of budget would otherwise waste the others' votes (a race can still do so; each
    # receipt is recorded as soon as it comes).
    check_budgets(_clients(account), 1)
    combined = ask_edges(_clients(account), conversations, plan.k, on_receipt=spent)
    threshold = default_threshold(combined.sigma) if plan.threshold is None else plan.threshold
    outcome = {}
    for category, noisy in combined.histograms.items():
        # The raw counts never leave the edges: NaN says so.
        histogram = Histogram(np.full(len(noisy), np.nan), noisy, np.maximum(noisy - threshold, 0.0))
        indices, fallback = select_from_histogram(histogram, n_select[category], plan.selection, rng=rng)
        outcome[category] = CategorySelection(indices, histogram, fallback)
    return outcome


def edge_privacy_section(account: Any) -> dict[str, Any]:
    """The manifest's ``privacy`` for an edge run: per edge, its votes and the epsilon it reported.
    Each owner's guarantee is its own (epsilon, delta) over its own records."""
    from fountain.edge.client import public_url

    plan = account.ctx.plan
    entries = [dict(e) for e in account.ctx.state.get("ledger", []) if "edge" in e]
    edges: dict[str, dict[str, Any]] = {public_url(url): {"edge": public_url(url), "votes": []} for url in plan.edges}
    for entry in entries:
        info = edges.setdefault(entry["edge"], {"edge": entry["edge"], "votes": []})
        info.update({k: entry[k] for k in ("edge_id", "epsilon", "epsilon_budget", "delta", "sigma")})
        info["votes"].append({"iteration": entry["iteration"], "vote": entry["vote"], "epsilon": entry["epsilon"]})
    spent = [e for e in edges.values() if "epsilon" in e]
    return {
        "rater": "PE",
        "source": "edge",
        "accountant": "gaussian-dp, per edge",
        "guarantee": "each edge's (epsilon, delta) covers that owner's records only, from its own noise",
        "epsilon": max((e["epsilon"] for e in spent), default=0.0),
        "delta": max((e["delta"] for e in spent), default=None),
        "iterations_planned": plan.iterations,
        "k": plan.k,
        "threshold_H": plan.threshold if plan.threshold is not None else "2 x sqrt(sum of the edges' sigma^2)",
        "selection": plan.selection,
        "edges": list(edges.values()),
        "ledger": entries,
    }
