"""The vote itself: check a request, embed the candidates, charge the ledger, then draw the noisy
nearest-neighbour histogram (:mod:`fountain.raters.pe`) and return it, and nothing else.

A request (JSON)::

    {"k": 1,
     "categories": {"<category>": {"conversations": [[{"role": "user", "content": "..."}, ...], ...]}
                    | {"embeddings": [[0.1, ...], ...]}},
     "embedder": "all-MiniLM-L6-v2"}       # required with "embeddings": both sides must agree

Everything in it is checked before any budget is spent; a bad request is a :class:`BadVote` (a 4xx
with a message that quotes no text). All categories of one request are ONE release: each private
record votes in its own category only, so the histograms together have L2 sensitivity 1.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fountain.edge.config import MAX_CONVERSATION_CHARS, MAX_K, EdgeConfig
from fountain.edge.ledger import EdgeLedger

ROLES = ("system", "user", "assistant")


class BadVote(Exception):
    """A request the service refuses: ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Ballot:
    """A checked request: the candidates of each category (texts or vectors) and k."""

    k: int
    texts: dict[str, list[str]]
    vectors: dict[str, np.ndarray]

    @property
    def categories(self) -> list[str]:
        return list(self.texts) + list(self.vectors)


def _conversation_text(messages: Any, where: str) -> str:
    if not isinstance(messages, list) or not messages:
        raise BadVote(422, f"{where}: a conversation is a non-empty list of messages")
    lines = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise BadVote(422, f"{where}[{i}]: a message is an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise BadVote(422, f"{where}[{i}]: role must be one of {', '.join(ROLES)} and content a string")
        lines.append(f"{role.title()}: {content}")
    text = "\n".join(lines)
    if len(text) > MAX_CONVERSATION_CHARS:
        raise BadVote(413, f"{where}: a conversation may hold at most {MAX_CONVERSATION_CHARS} characters")
    return text


def _vectors(rows: Any, dim: int, where: str) -> np.ndarray:
    if not isinstance(rows, list) or not rows:
        raise BadVote(422, f"{where}: embeddings are a non-empty list of vectors")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in row
        ):
            raise BadVote(422, f"{where}[{i}]: a vector is a list of finite numbers")
        if len(row) != dim:
            raise BadVote(422, f"{where}[{i}]: wrong dimension {len(row)}; this edge's embedder has {dim}")
    array = np.asarray(rows, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise BadVote(422, f"{where}: a value overflows float32")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


class VoteBox:
    """The private embeddings, the embedder, the ledger and the noise of one edge."""

    def __init__(
        self,
        private_by_category: Mapping[str, np.ndarray],
        embedder: Any,
        ledger: EdgeLedger,
        sigma: float,
        *,
        max_candidates: int,
    ):
        self._private = dict(private_by_category)
        self.embedder = embedder
        self.ledger = ledger
        self.sigma = float(sigma)
        self.max_candidates = max_candidates

    @classmethod
    def open(cls, config: EdgeConfig, embedder: Any = None) -> VoteBox:
        """Read and embed the private data (in memory only), plan sigma, open the ledger."""
        from fountain.embed.embedder import encode_conversations, load_embedder
        from fountain.raters.privacy import default_delta, sigma_for
        from fountain.raters.realdata import group_by_category, load_real_data

        real = load_real_data(config.real_data, default_category=config.category)
        delta = config.delta if config.delta is not None else default_delta(len(real))
        sigma = sigma_for(config.epsilon, config.iterations, delta)
        ledger = EdgeLedger(config.state_dir, epsilon_budget=config.epsilon, delta=delta)
        embedder = embedder if embedder is not None else load_embedder(config.embedder)
        private = {
            category: encode_conversations(embedder, [c.turns for c in items])
            for category, items in group_by_category(real).items()
        }
        return cls(private, embedder, ledger, sigma, max_candidates=config.max_candidates)

    @property
    def records(self) -> int:
        """The number of private records (owner-side only: never sent to a client)."""
        return sum(len(v) for v in self._private.values())

    def info(self) -> dict[str, Any]:
        return {
            "embedder": {"name": str(self.embedder.name), "dim": int(self.embedder.dim)},
            "sigma": self.sigma,
            "delta": self.ledger.delta,
        }

    def parse(self, data: Any) -> Ballot:
        """Check a decoded request body; raise :class:`BadVote` for anything wrong."""
        if not isinstance(data, dict):
            raise BadVote(400, "the body must be a JSON object")
        unknown = set(data) - {"k", "categories", "embedder"}
        if unknown:
            raise BadVote(422, f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        k = data.get("k", 1)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise BadVote(422, f"k must be an integer from 1 to {MAX_K}")
        categories = data.get("categories")
        if not isinstance(categories, dict) or not categories:
            raise BadVote(422, "'categories' must map each category to its candidates")
        texts: dict[str, list[str]] = {}
        vectors: dict[str, np.ndarray] = {}
        total = 0
        for index, (category, block) in enumerate(categories.items()):
            where = f"categories[{index}]"
            if (
                not isinstance(block, dict)
                or len(block) != 1
                or next(iter(block)) not in ("conversations", "embeddings")
            ):
                raise BadVote(422, f"{where}: give either 'conversations' or 'embeddings'")
            ((kind, items),) = block.items()
            total += len(items) if isinstance(items, list) else 0
            if total > self.max_candidates:
                raise BadVote(413, f"too many candidates: this edge takes at most {self.max_candidates} per vote")
            if kind == "conversations":
                if not isinstance(items, list) or not items:
                    raise BadVote(422, f"{where}: 'conversations' is a non-empty list")
                texts[category] = [_conversation_text(c, f"{where}.conversations[{i}]") for i, c in enumerate(items)]
            else:
                self._check_embedder(data.get("embedder"))
                vectors[category] = _vectors(items, int(self.embedder.dim), f"{where}.embeddings")
        return Ballot(k, texts, vectors)

    def _check_embedder(self, named: Any) -> None:
        mine = str(self.embedder.name)
        if not isinstance(named, str):
            raise BadVote(422, f"embeddings need 'embedder' naming the model that made them (this edge uses {mine})")
        if named != mine:
            raise BadVote(
                422, f"this edge embeds with {mine}, not the named embedder: send conversations, or embed with {mine}"
            )

    def _candidates(self, ballot: Ballot) -> dict[str, np.ndarray]:
        from fountain.embed.embedder import normalize_rows

        out = dict(ballot.vectors)
        for category, texts in ballot.texts.items():
            out[category] = normalize_rows(self.embedder.encode(texts))
        return out

    def vote(self, ballot: Ballot, *, client: str | None = None) -> dict[str, Any]:
        """Embed, charge the ledger (persisted), THEN draw noise; return the noisy histograms.

        Raises PrivacyBudgetError (nothing charged) when the budget would be exceeded."""
        from fountain.raters.pe import dp_histogram

        candidates = self._candidates(ballot)
        details: dict[str, Any] = {"candidates": sum(len(v) for v in candidates.values()), "k": ballot.k}
        if client:
            details["client"] = client
        entry = self.ledger.charge(self.sigma, **details)
        # Fresh OS entropy for every vote: nothing a client sends can choose or replay the noise.
        rng = np.random.default_rng(secrets.randbits(128))
        histograms = {}
        for category, synthetic in candidates.items():
            private = self._private.get(category)
            if private is None:
                private = np.zeros((0, synthetic.shape[1]), dtype=np.float32)
            noisy = dp_histogram(private, synthetic, k=ballot.k, sigma=self.sigma, rng=rng).noisy_counts
            histograms[category] = [float(x) for x in noisy]
        return {
            "vote": entry["vote"],
            "sigma": self.sigma,
            "k": ballot.k,
            "histograms": histograms,
            "ledger": self.ledger.to_dict(self.sigma) | {"votes": len(self.ledger.votes)},
        }
