"""Real Filter (RF): reject synthetic conversations that do not look like their category's real ones.

**RF is NOT differentially private.** It reads the real examples directly and its decisions
depend on every one of them; a rejected or kept sample can reveal something about a single real
conversation. Use PE (``pe.py``) when the real data is sensitive.

Scores (embeddings are L2-normalised, similarity = cosine):

- ``s_c(x)`` = mean similarity of ``x`` to its ``k`` nearest real examples of category ``c``;
- margin ``m(x) = s_own(x) - max over other categories c' of s_c'(x)``.

Calibration on the real data, leave-one-out (each real example scored against the others):

- margin threshold of a category = the ``percentile``-th (default 5th) percentile of its real
  examples' margins: a synthetic sample whose margin is below what 95% of real examples achieve is
  rejected as ``rf:wrong_category``. The threshold is whatever the data says (negative when real
  categories overlap), never a fixed 0;
- off-topic threshold = the same percentile of the real examples' own-category similarity
  ``s_own``; a sample below it is ``rf:off_topic``. By default this test runs only when there is a
  single category, where no margin exists;
- a category with fewer than ``min_calibration`` real examples uses the thresholds pooled over all
  categories (a percentile of a handful of values is noise).

The near-copy guard rejects any synthetic sample with cosine similarity above 0.95 to any real
example (``rf:near_copy``): a generator that reproduces a real conversation leaks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fountain.errors import RealDataError


@dataclass(frozen=True)
class RFSettings:
    """RF parameters; the defaults are the documented ones."""

    k: int = 5
    percentile: float = 5.0
    near_copy: float = 0.95
    off_topic: bool | None = None  # None: only with a single category
    min_calibration: int = 10


@dataclass(frozen=True)
class RFDecision:
    """RF's verdict on one synthetic sample (``reason`` is None when kept)."""

    index: int
    category: str
    keep: bool
    reason: str | None
    own_similarity: float
    margin: float | None  # None with a single category
    nearest_other: str | None  # the closest other category
    max_similarity: float  # to any real example (near-copy guard)

    def detail(self) -> dict[str, Any]:
        """Scores for ``rejects.jsonl`` (numbers only: no real text)."""
        return {
            "category": self.category,
            "own_similarity": round(self.own_similarity, 4),
            "margin": None if self.margin is None else round(self.margin, 4),
            "nearest_other": self.nearest_other,
            "max_similarity": round(self.max_similarity, 4),
        }


@dataclass
class RealFilter:
    """A Real Filter calibrated on real embeddings grouped by category (see :meth:`fit`)."""

    categories: list[str]
    real: list[np.ndarray]
    settings: RFSettings
    margin_thresholds: dict[str, float] = field(default_factory=dict)
    off_topic_thresholds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, real_by_category: Mapping[str, np.ndarray], settings: RFSettings | None = None) -> RealFilter:
        """Calibrate thresholds from leave-one-out scores of the real examples."""
        settings = settings or RFSettings()
        if settings.k < 1:
            raise ValueError("k must be >= 1")
        if not 0.0 <= settings.percentile <= 100.0:
            raise ValueError("percentile must lie in [0, 100]")
        if not real_by_category:
            raise RealDataError("RF needs real examples, and none were given", hint="pass a non-empty --real-data file")
        categories = list(real_by_category)
        real = [np.ascontiguousarray(real_by_category[c], dtype=np.float32) for c in categories]
        for category, vectors in zip(categories, real):
            if len(vectors) < 2:
                raise RealDataError(
                    f"category {category!r} has {len(vectors)} real example(s); RF needs at least 2 "
                    "per category to calibrate its thresholds",
                    hint="add real examples of that category, or drop it from the real data",
                )
        rf = cls(categories, real, settings)
        rf._calibrate()
        return rf

    # -- scoring --------------------------------------------------------------------------------

    def _scores(self, queries: np.ndarray, leave_out: int | None = None) -> np.ndarray:
        """(n, n_categories) mean top-k similarities; ``leave_out`` = the queries' own category
        index when the queries are that category's real examples in order (leave-one-out)."""
        from fountain.embed.search import knn

        out = np.empty((len(queries), len(self.categories)), dtype=np.float64)
        for c, base in enumerate(self.real):
            if c == leave_out:
                kk = min(self.settings.k, len(base) - 1)
                sims, idx = knn(queries, base, kk + 1)
                sims, idx = np.asarray(sims), np.asarray(idx)
                mask = idx == np.arange(len(queries))[:, None]
                # The search returns distinct indices; a row missing itself (a tie with an
                # identical vector) drops its last neighbour instead.
                mask[~mask.any(axis=1), -1] = True
                out[:, c] = sims[~mask].reshape(len(queries), kk).mean(axis=1)
            else:
                kk = min(self.settings.k, len(base))
                sims, _ = knn(queries, base, kk)
                out[:, c] = np.asarray(sims)[:, :kk].mean(axis=1)
        return out

    def _margins(self, scores: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(scores))
        others = scores.copy()
        others[rows, own] = -np.inf
        nearest = others.argmax(axis=1)
        return scores[rows, own] - others[rows, nearest], nearest

    def _off_topic_enabled(self) -> bool:
        return self.settings.off_topic if self.settings.off_topic is not None else len(self.categories) == 1

    def _calibrate(self) -> None:
        p = self.settings.percentile
        margins: dict[str, np.ndarray] = {}
        owns: dict[str, np.ndarray] = {}
        for c, (category, vectors) in enumerate(zip(self.categories, self.real)):
            scores = self._scores(vectors, leave_out=c)
            owns[category] = scores[:, c]
            if len(self.categories) > 1:
                margins[category] = self._margins(scores, np.full(len(vectors), c))[0]
        pooled_own = np.concatenate(list(owns.values()))
        pooled_margin = np.concatenate(list(margins.values())) if margins else None
        for category in self.categories:
            small = len(owns[category]) < self.settings.min_calibration
            self.off_topic_thresholds[category] = float(np.percentile(pooled_own if small else owns[category], p))
            if margins:
                assert pooled_margin is not None  # set whenever margins is non-empty
                self.margin_thresholds[category] = float(
                    np.percentile(pooled_margin if small else margins[category], p)
                )

    def rate(self, synthetic_emb: np.ndarray, categories: Sequence[str]) -> list[RFDecision]:
        """Judge each synthetic sample (row) against the real data of its category."""
        from fountain.embed.search import knn

        synthetic = np.ascontiguousarray(synthetic_emb, dtype=np.float32)
        if len(categories) != len(synthetic):
            raise ValueError(f"{len(categories)} categories for {len(synthetic)} samples")
        if len(synthetic) == 0:
            return []
        position = {c: i for i, c in enumerate(self.categories)}
        missing = sorted({c for c in categories if c not in position})
        if missing:
            raise RealDataError(
                f"the real data has no examples of category {', '.join(map(repr, missing))}",
                hint=f"real data categories: {', '.join(map(repr, self.categories))}; add real "
                "examples with the spec's category (metadata.category), or fix the category",
            )
        own = np.array([position[c] for c in categories])
        scores = self._scores(synthetic)
        own_sim = scores[np.arange(len(synthetic)), own]
        if len(self.categories) > 1:
            margins, nearest = self._margins(scores, own)
        else:
            margins, nearest = None, None
        max_sim = np.full(len(synthetic), -np.inf)
        for base in self.real:
            sims, _ = knn(synthetic, base, 1)
            max_sim = np.maximum(max_sim, np.asarray(sims)[:, 0])
        off_topic = self._off_topic_enabled()
        decisions = []
        for i, category in enumerate(categories):
            reason = None
            if max_sim[i] > self.settings.near_copy:
                reason = "rf:near_copy"
            elif margins is not None and margins[i] < self.margin_thresholds[category]:
                reason = "rf:wrong_category"
            elif off_topic and own_sim[i] < self.off_topic_thresholds[category]:
                reason = "rf:off_topic"
            decisions.append(
                RFDecision(
                    index=i,
                    category=category,
                    keep=reason is None,
                    reason=reason,
                    own_similarity=float(own_sim[i]),
                    margin=None if margins is None else float(margins[i]),
                    nearest_other=None if nearest is None else self.categories[int(nearest[i])],
                    max_similarity=float(max_sim[i]),
                )
            )
        return decisions

    def calibration(self) -> dict[str, Any]:
        """Thresholds and parameters, for the manifest (numbers only)."""
        return {
            "private": False,
            "k": self.settings.k,
            "percentile": self.settings.percentile,
            "near_copy": self.settings.near_copy,
            "off_topic": self._off_topic_enabled(),
            "real_examples": {c: int(len(v)) for c, v in zip(self.categories, self.real)},
            "margin_thresholds": dict(self.margin_thresholds),
            "off_topic_thresholds": dict(self.off_topic_thresholds),
        }
