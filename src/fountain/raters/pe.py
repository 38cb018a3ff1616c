"""Private Evolution (PE) voting: the differentially private nearest-neighbour histogram.

One PE iteration, per category (Lin et al. 2024, "Differentially Private Synthetic Data via
Foundation Model APIs"; Xie et al. 2024, Aug-PE):

1. every private sample votes for its ``k`` nearest synthetic samples (inner product of
   L2-normalised embeddings), each vote weighing ``1/sqrt(k)``: one private sample changes the
   histogram by a vector of L2 norm exactly 1, so the Gaussian mechanism has sensitivity 1;
2. ``N(0, sigma^2)`` noise is added to every count;
3. counts are clipped: ``max(h - H, 0)``, so candidates that got only noise mostly drop to 0;
4. candidates are selected by rank (top counts) or by sampling proportionally to the counts.

Only the noisy histogram depends on the private data; everything after it (clipping, selection,
the variations generated from the selected) is post-processing and costs no privacy. Each private
sample belongs to one category, so the per-category histograms together are still one
sensitivity-1 release per iteration: the accountant (``privacy.py``) charges ``mu = 1/sigma`` per
iteration whatever the number of categories.

The default threshold is ``H = 2 sigma``: a candidate with no vote survives clipping with
probability ``P(N(0,1) > 2)`` = 2.3%. (The reference PE library clips nothing by default; PE's
paper treats H as a hyperparameter.) Pass ``threshold`` to choose another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

DEFAULT_THRESHOLD_SIGMAS = 2.0
SELECTIONS = ("rank", "sample")


class Histogram(NamedTuple):
    """The vote histogram over synthetic candidates: raw (private), noisy and clipped (DP)."""

    raw_counts: np.ndarray
    noisy_counts: np.ndarray
    clipped: np.ndarray


def default_threshold(sigma: float) -> float:
    """H = 2 sigma (documented default; 0 when there is no noise)."""
    return DEFAULT_THRESHOLD_SIGMAS * sigma


def vote_counts(private_emb: np.ndarray, synthetic_emb: np.ndarray, k: int = 1) -> np.ndarray:
    """Raw histogram: private samples vote for their k nearest synthetic samples (1/sqrt(k) each).

    These counts are NOT private: only :func:`dp_histogram`'s noisy output may leave the rater.
    """
    n_syn = len(synthetic_emb)
    if n_syn == 0:
        raise ValueError("no synthetic candidates to vote for")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    # With fewer candidates than k, each private sample casts fewer votes of 1/sqrt(k): the L2
    # norm of its contribution stays below 1, which is still safe.
    k_eff = min(k, n_syn)
    counts = np.zeros(n_syn, dtype=np.float64)
    if len(private_emb) == 0:
        return counts
    from fountain.embed.search import knn

    _, indices = knn(
        np.ascontiguousarray(private_emb, dtype=np.float32),
        np.ascontiguousarray(synthetic_emb, dtype=np.float32),
        k_eff,
    )
    indices = np.asarray(indices).reshape(len(private_emb), -1)
    indices = indices[indices >= 0]
    counts += np.bincount(indices, minlength=n_syn) / math.sqrt(k)
    return counts


def dp_histogram(
    private_emb: np.ndarray,
    synthetic_emb: np.ndarray,
    *,
    k: int = 1,
    sigma: float,
    threshold_H: float | None = None,
    rng: np.random.Generator,
) -> Histogram:
    """The DP nearest-neighbour histogram of one category for one iteration.

    ``sigma`` is the Gaussian noise per count (0: no noise, no privacy); ``threshold_H`` the
    clipping threshold (default :func:`default_threshold`). Returns ``(raw, noisy, clipped)``;
    only ``noisy`` and ``clipped`` are differentially private.
    """
    if sigma < 0 or math.isnan(sigma):
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    raw = vote_counts(private_emb, synthetic_emb, k)
    noisy = raw + rng.normal(0.0, sigma, size=raw.shape) if sigma > 0 else raw.copy()
    H = default_threshold(sigma) if threshold_H is None else float(threshold_H)
    clipped = np.maximum(noisy - H, 0.0)
    return Histogram(raw, noisy, clipped)


def select_from_histogram(
    histogram: Histogram, n_select: int, selection: str = "rank", *, rng: np.random.Generator
) -> tuple[np.ndarray, str | None]:
    """Pick ``n_select`` candidate indices from a DP histogram; returns (indices, fallback).

    - ``rank``: the top ``n_select`` by clipped count, ties broken by noisy count, then index;
      without replacement, so at most ``len(histogram)`` indices.
    - ``sample``: ``n_select`` draws with replacement, probability proportional to the clipped
      count. When every clipped count is 0 there is nothing to sample from: it falls back to the
      ranking by noisy count, cycled to ``n_select`` (``fallback == "rank_noisy"``). Both only
      read the DP output, so neither costs privacy.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    n = len(histogram.clipped)
    if n_select <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64), None
    # lexsort: last key is primary. Descending clipped, then descending noisy, then index.
    order = np.lexsort((np.arange(n), -histogram.noisy_counts, -histogram.clipped))
    if selection == "rank":
        return order[:n_select].astype(np.int64), None
    total = float(histogram.clipped.sum())
    if total <= 0.0:
        return np.resize(order, n_select).astype(np.int64), "rank_noisy"
    return rng.choice(n, size=n_select, replace=True, p=histogram.clipped / total).astype(np.int64), None


@dataclass(frozen=True)
class CategorySelection:
    """The outcome of PE voting for one category."""

    indices: np.ndarray  # selected positions in that category's synthetic array
    histogram: Histogram
    fallback: str | None = None

    def public_summary(self) -> dict[str, Any]:
        """What may be logged or written: derived from the DP histogram only."""
        return {
            "selected": int(len(self.indices)),
            "distinct_selected": int(len(np.unique(self.indices))),
            "candidates": int(len(self.histogram.clipped)),
            "nonzero_after_clipping": int(np.count_nonzero(self.histogram.clipped)),
            "fallback": self.fallback,
        }


def pe_select_detailed(
    private_by_category: Mapping[str, np.ndarray],
    synthetic_by_category: Mapping[str, np.ndarray],
    *,
    sigma: float,
    n_select: int | Mapping[str, int],
    k: int = 1,
    threshold_H: float | None = None,
    selection: str = "rank",
    rng: np.random.Generator,
) -> dict[str, CategorySelection]:
    """PE voting and selection per category; see :func:`pe_select`."""
    result: dict[str, CategorySelection] = {}
    for category, synthetic in synthetic_by_category.items():
        synthetic = np.asarray(synthetic, dtype=np.float32)
        private = private_by_category.get(category)
        if private is None:
            # No private sample has this category: its histogram is all zeros plus noise, which
            # is exactly what an empty private set releases, so it is handled the same way.
            private = np.zeros((0, synthetic.shape[1] if synthetic.ndim == 2 else 0), np.float32)
        private = np.asarray(private, dtype=np.float32)
        if len(synthetic) and len(private) and private.shape[1] != synthetic.shape[1]:
            raise ValueError(
                f"category {category!r}: private and synthetic embeddings have "
                f"different dimensions ({private.shape[1]} vs {synthetic.shape[1]})"
            )
        want = n_select[category] if isinstance(n_select, Mapping) else n_select
        if len(synthetic) == 0:
            result[category] = CategorySelection(
                np.zeros(0, np.int64), Histogram(*(np.zeros(0) for _ in range(3))), "no_candidates"
            )
            continue
        histogram = dp_histogram(private, synthetic, k=k, sigma=sigma, threshold_H=threshold_H, rng=rng)
        indices, fallback = select_from_histogram(histogram, want, selection, rng=rng)
        result[category] = CategorySelection(indices, histogram, fallback)
    return result


def pe_select(
    private_by_category: Mapping[str, np.ndarray],
    synthetic_by_category: Mapping[str, np.ndarray],
    *,
    sigma: float,
    n_select: int | Mapping[str, int],
    k: int = 1,
    threshold_H: float | None = None,
    selection: str = "rank",
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Select synthetic candidates per category by the DP vote of the private samples.

    ``private_by_category`` / ``synthetic_by_category`` map a category to its embeddings
    (n, dim), L2-normalised. ``n_select`` is a count for every category or a mapping per
    category. Returns, per synthetic category, the selected indices into that category's array
    (``rank``: distinct; ``sample``: with replacement). Private categories with no synthetic
    candidates are ignored (they have nothing to vote for).
    """
    detailed = pe_select_detailed(
        private_by_category,
        synthetic_by_category,
        sigma=sigma,
        n_select=n_select,
        k=k,
        threshold_H=threshold_H,
        selection=selection,
        rng=rng,
    )
    return {category: outcome.indices for category, outcome in detailed.items()}
