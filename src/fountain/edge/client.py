"""The generator's side of the edge service: ask one or more data owners for the noisy vote
histogram of a synthetic population, and combine their answers.

Several owners each run their own edge with their own budget. Each adds its own Gaussian noise
(its sigma) to the votes of its own records; the generator SUMS the noisy histograms. Owner i's
guarantee is its own (epsilon_i, delta_i) over its own records, accounted by its own ledger: the
other owners' noise can only help it, and is not counted. The combined histogram carries noise
of sigma = sqrt(sum sigma_i^2), which sets the default clipping threshold.

Standard library only (urllib): the generator needs no server package. The token comes from
``$FOUNTAIN_EDGE_TOKEN`` (``$FOUNTAIN_EDGE_TOKEN_<i>`` for the i-th ``--edge``, when owners use
different tokens); a CA file for a self-signed TLS certificate from ``$FOUNTAIN_EDGE_CA``.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from fountain.errors import FountainError, PrivacyBudgetError

TOKEN_ENV = "FOUNTAIN_EDGE_TOKEN"
CA_ENV = "FOUNTAIN_EDGE_CA"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT_S = 300.0


class EdgeError(FountainError):
    """An edge service could not be reached, refused the token, or answered something unusable."""


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: what may be written to a manifest."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_edge_url(url: str) -> str:
    """Check an ``--edge`` URL; return it normalised (no trailing slash)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise FountainError("not a valid edge URL", location="--edge", hint="e.g. https://owner.example:8765") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FountainError(
            f"an edge URL needs http:// or https:// and a host, got {public_url(url)!r}",
            location="--edge",
            hint="e.g. https://owner.example:8765 (the address `fountain edge serve` prints)",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise FountainError(
            "an edge URL carries no credentials, query or fragment",
            location="--edge",
            hint=f"put the token in ${TOKEN_ENV}, never in the URL (URLs are written to the manifest)",
        )
    return url.strip().rstrip("/")


def _token_for(index: int | None) -> str | None:
    if index is not None:
        value = os.environ.get(f"{TOKEN_ENV}_{index}", "").strip()
        if value:
            return value
    return os.environ.get(TOKEN_ENV, "").strip() or None


@dataclass
class EdgeClient:
    """One edge service. ``index`` (1-based) picks ``$FOUNTAIN_EDGE_TOKEN_<index>`` if set."""

    url: str
    index: int | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.url = check_edge_url(self.url)
        if self.token is None:
            self.token = _token_for(self.index)

    @property
    def name(self) -> str:
        return public_url(self.url)

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https:"):
            return None
        ca = os.environ.get(CA_ENV, "").strip() or None
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as error:
            raise EdgeError(f"cannot load the CA file in ${CA_ENV}: {error}", location=ca) from None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except urllib.error.HTTPError as failure:
            raw, status = failure.read(MAX_RESPONSE_BYTES + 1), failure.code
        except (urllib.error.URLError, OSError, ValueError) as failure:
            reason = getattr(failure, "reason", failure)
            raise EdgeError(
                f"cannot reach the edge service: {reason}",
                location=self.name,
                hint="is `fountain edge serve` running there, and is the address (http/https, port) right?",
            ) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise EdgeError("the edge's answer is too large", location=self.name)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        message = payload.get("error") if isinstance(payload, dict) else None
        if status == 401:
            raise EdgeError(
                "the edge refused the token (401)",
                location=self.name,
                hint=f"set ${TOKEN_ENV} (or ${TOKEN_ENV}_{self.index or 1}) to the token the data owner gave you",
            )
        if status == 409:
            raise PrivacyBudgetError(
                f"the edge refused the vote: {message or 'privacy budget spent'}",
                location=self.name,
                hint="the run keeps everything made so far; run the same command again once the data "
                "owner grants more budget",
            )
        if status == 413:
            raise EdgeError(
                f"the edge refused the request as too large: {str(message or '')[:300]}",
                location=self.name,
                hint="one vote covers the whole population: ask the data owner to raise --max-candidates, "
                "or generate a smaller population (--seeds-per-direction)",
            )
        if status >= 400 or not isinstance(payload, dict) or message is not None:
            raise EdgeError(f"the edge answered {status}: {str(message or 'no JSON object')[:300]}", location=self.name)
        return payload

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/info")

    def ledger(self) -> dict[str, Any]:
        """GET /ledger: the edge's privacy spent, its budget and the votes left."""
        data = self._call("GET", "/ledger")
        if not isinstance(data.get("votes"), list) or not isinstance(data.get("votes_left"), int):
            raise EdgeError("the edge's ledger is malformed", location=self.name)
        return data

    def vote(self, conversations: Mapping[str, Sequence[Sequence[Mapping[str, str]]]], k: int = 1) -> EdgeVote:
        """POST /vote with the candidates of each category (OpenAI-style message lists)."""
        body = {
            "k": k,
            "categories": {c: {"conversations": [list(m) for m in items]} for c, items in conversations.items()},
        }
        data = self._call("POST", "/vote", body)
        return EdgeVote.parse(data, {c: len(items) for c, items in conversations.items()}, self.name)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


@dataclass(frozen=True)
class EdgeVote:
    """One edge's answer: noisy histograms per category, its sigma, and its ledger after the vote."""

    edge: str
    histograms: dict[str, np.ndarray]
    sigma: float
    receipt: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any], sizes: Mapping[str, int], edge: str) -> EdgeVote:
        """Check an answer from an untrusted server against the request it answers."""
        try:
            sigma = _number(data["sigma"])
            if sigma <= 0:
                raise ValueError("sigma must be positive")
            raw = data["histograms"]
            histograms = {}
            for category, size in sizes.items():
                counts = [_number(x) for x in raw[category]]
                if len(counts) != size:
                    raise ValueError(f"{len(counts)} counts for {size} candidates")
                histograms[category] = np.asarray(counts, dtype=np.float64)
            ledger = data["ledger"]
            receipt = {
                "edge": edge,
                "edge_id": str(ledger["edge_id"])[:64],
                "vote": int(data["vote"]),
                "sigma": sigma,
                "epsilon": _number(ledger["epsilon"]),
                "epsilon_budget": _number(ledger["epsilon_budget"]),
                "delta": _number(ledger["delta"]),
            }
        except (KeyError, TypeError, ValueError) as error:
            raise EdgeError(f"the edge's answer is malformed ({error})", location=edge) from None
        return cls(edge, histograms, sigma, receipt)


@dataclass(frozen=True)
class CombinedVote:
    """The sum of every edge's noisy histograms, their combined sigma, and one receipt per edge."""

    histograms: dict[str, np.ndarray]
    sigma: float
    receipts: list[dict[str, Any]]


def check_budgets(clients: Sequence[EdgeClient], votes_needed: int) -> list[dict[str, Any]]:
    """Ask every edge's ledger before spending anything: refuse (PrivacyBudgetError, quoting the
    edge's own numbers) when one of them has fewer than ``votes_needed`` votes left."""
    ledgers = []
    for client in clients:
        ledger = client.ledger()
        if ledger["votes_left"] < votes_needed:
            raise PrivacyBudgetError(
                f"the edge has budget for {ledger['votes_left']} more vote(s), this run needs {votes_needed}: "
                f"it has spent epsilon = {float(ledger['epsilon']):.4g} of its budget "
                f"{float(ledger['epsilon_budget']):.4g} in {len(ledger['votes'])} vote(s)",
                location=client.name,
                hint="ask the data owner for more budget, or run fewer --iterations; nothing was spent or lost",
            )
        ledgers.append(ledger)
    return ledgers


def ask_edges(
    clients: Sequence[EdgeClient],
    conversations: Mapping[str, Sequence[Sequence[Mapping[str, str]]]],
    k: int = 1,
    *,
    on_receipt: Callable[[dict[str, Any]], None] | None = None,
) -> CombinedVote:
    """One PE release from every edge, summed. ``on_receipt`` is called as soon as an edge has
    answered (so the caller records what that edge spent even if a later edge refuses); an edge
    that refuses stops the vote with its error."""
    votes = []
    for client in clients:
        vote = client.vote(conversations, k)
        votes.append(vote)
        if on_receipt is not None:
            on_receipt(vote.receipt)
    histograms = {category: np.sum([vote.histograms[category] for vote in votes], axis=0) for category in conversations}
    sigma = math.sqrt(sum(vote.sigma**2 for vote in votes))
    return CombinedVote(histograms, sigma, [vote.receipt for vote in votes])


def check_edge_plan(
    urls: Sequence[str], framework: str, rater: str | None, options: Any, notes: list[str]
) -> tuple[str, ...]:
    """The checks of ``fountain run --edge`` made before anything is spent: Feedback with PE only,
    no private data or budget on the generator's side (the owners hold both), valid distinct URLs.
    Appends warnings to ``notes``; returns the URLs normalised."""
    if framework != "Feedback" or rater != "PE":
        raise FountainError(
            "--edge lets data owners vote in Private Evolution: it needs --framework Feedback --rater PE",
            location="--edge",
            hint="add --framework Feedback --rater PE",
        )
    for name in ("real_data", "epsilon", "delta", "sigma"):
        if getattr(options, name, None) is not None:
            flag = "--" + name.replace("_", "-")
            raise FountainError(
                f"{flag} is the data owner's to set when the votes come from edges",
                location=flag,
                hint=f"drop {flag}: each edge holds its private data and enforces its own budget "
                "(`fountain privacy --edge URL` shows it)",
            )
    edges = tuple(check_edge_url(url) for url in urls)
    if len(set(map(public_url, edges))) != len(edges):
        raise FountainError(
            "the same edge is named twice: its records would vote twice", location="--edge", hint="name each edge once"
        )
    from fountain.edge.config import is_loopback

    for url in edges:
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            notes.append(
                f"{public_url(url)} is plain http on a non-loopback host: the token and the synthetic "
                "candidates travel unencrypted (the owner can serve TLS with --tls-cert/--tls-key)"
            )
    return edges
