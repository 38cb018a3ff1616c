import math

import numpy as np
import pytest

from fountain.raters.pe import (
    Histogram,
    default_threshold,
    dp_histogram,
    pe_select,
    pe_select_detailed,
    select_from_histogram,
    vote_counts,
)
from fountain.raters.privacy import default_delta, sigma_for

DIM = 64


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _cluster(rng, centre, n, spread=0.5):
    return _unit(centre + spread * rng.normal(size=(n, DIM)) / math.sqrt(DIM))


@pytest.fixture()
def two_clusters():
    rng = np.random.default_rng(1234)
    a, b = _unit(rng.normal(size=DIM)), _unit(rng.normal(size=DIM))
    synthetic = np.vstack([_cluster(rng, a, 100), _cluster(rng, b, 100)])  # A: 0..99, B: 100..199
    return rng, a, b, synthetic


# --- votes -------------------------------------------------------------------------------------


def test_each_private_sample_casts_one_vote_with_k1():
    synthetic = np.eye(4, DIM, dtype=np.float32)
    private = _unit(np.eye(4, DIM)[[0, 0, 2]] + 0.1 * np.eye(4, DIM)[[1, 3, 1]])
    np.testing.assert_allclose(vote_counts(private, synthetic, k=1), [2, 0, 1, 0])


def test_k_votes_weigh_one_over_sqrt_k():
    synthetic = np.eye(8, DIM, dtype=np.float32)
    # Nearest four synthetic samples of this private sample: 0, 1, 2, 3 (decreasing similarity).
    private = _unit(np.array([4.0, 3.0, 2.0, 1.0] + [0.0] * (DIM - 4)))[None, :]
    counts = vote_counts(private, synthetic, k=4)
    np.testing.assert_allclose(counts, [0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0])
    # Sensitivity 1: one private sample moves the histogram by a vector of L2 norm 1.
    assert np.linalg.norm(counts) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    many = _unit(rng.normal(size=(50, DIM)))
    with_one_more = np.vstack([many, private])
    diff = vote_counts(with_one_more, synthetic, k=4) - vote_counts(many, synthetic, k=4)
    assert np.linalg.norm(diff) == pytest.approx(1.0)


def test_clipping_subtracts_the_threshold_and_floors_at_zero():
    synthetic = np.eye(3, DIM, dtype=np.float32)
    private = np.eye(3, DIM, dtype=np.float32)[[0, 0, 0, 1]]
    hist = dp_histogram(private, synthetic, sigma=0.0, threshold_H=1.5, rng=np.random.default_rng(0))
    np.testing.assert_allclose(hist.raw_counts, [3, 1, 0])
    np.testing.assert_allclose(hist.noisy_counts, [3, 1, 0])  # sigma = 0: no noise
    np.testing.assert_allclose(hist.clipped, [1.5, 0, 0])
    assert default_threshold(3.0) == 6.0
    hist = dp_histogram(private, synthetic, sigma=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(hist.clipped, [3, 1, 0])  # default H = 2 sigma = 0


def test_injected_noise_has_variance_sigma_squared():
    rng = np.random.default_rng(20240601)
    synthetic = _unit(rng.normal(size=(500, DIM)))
    private = _unit(rng.normal(size=(300, DIM)))
    sigma = 3.0
    draws = np.stack(
        [
            (lambda h: h.noisy_counts - h.raw_counts)(dp_histogram(private, synthetic, sigma=sigma, rng=rng))
            for _ in range(100)
        ]
    )  # 50,000 noise values
    # Standard error of the sample variance is sigma^2 * sqrt(2/n) ~ 0.6%: a 4% band is ~6 SE
    # wide (never flaky with this seed) yet catches sigma vs sigma^2 or a wrong scale.
    assert draws.var() == pytest.approx(sigma**2, rel=0.04)
    assert abs(draws.mean()) < 5 * sigma / math.sqrt(draws.size)
    # Independent per count: the correlation of neighbouring bins is ~0.
    assert abs(np.corrcoef(draws[:, :-1].ravel(), draws[:, 1:].ravel())[0, 1]) < 0.03
    # The raw counts themselves do not move from draw to draw.
    first = dp_histogram(private, synthetic, sigma=sigma, rng=rng).raw_counts
    np.testing.assert_array_equal(first, vote_counts(private, synthetic))


# --- the known answer: the population moves to the private cluster ---------------------------


@pytest.mark.parametrize("selection", ["rank", "sample"])
@pytest.mark.parametrize("epsilon", [math.inf, 4.0])
def test_selection_moves_to_the_private_cluster(two_clusters, epsilon, selection):
    rng, a, b, synthetic = two_clusters
    n_private, iterations = 2000, 5
    sigma = sigma_for(epsilon, iterations, default_delta(n_private))
    if math.isinf(epsilon):
        assert sigma == 0.0
    else:
        assert 1.0 < sigma < 5.0  # real noise, ~2.2 here
    for centre, side in ((a, 0), (b, 1)):  # private data in A, then in B: the answer follows it
        private = _cluster(rng, centre, n_private)
        chosen = pe_select(
            {"c": private},
            {"c": synthetic},
            sigma=sigma,
            n_select=40,
            selection=selection,
            rng=np.random.default_rng(7),
        )["c"]
        assert len(chosen) == 40
        # Chance would give 50%; over 40 other seeds the worst case measured was 97.5%.
        from_side = np.mean((chosen >= 100) == bool(side))
        assert from_side >= 0.9, (epsilon, selection, side, from_side)


def test_selection_per_category(two_clusters):
    rng, a, b, synthetic = two_clusters
    private = {"x": _cluster(rng, a, 1000), "y": _cluster(rng, b, 1000)}
    candidates = {"x": synthetic, "y": synthetic[::-1].copy()}  # y: B first (0..99)
    sigma = sigma_for(4.0, 5, default_delta(2000))
    out = pe_select_detailed(
        private, candidates, sigma=sigma, n_select={"x": 20, "y": 30}, rng=np.random.default_rng(3)
    )
    assert (out["x"].indices < 100).mean() >= 0.9  # x's private data is in A
    assert (out["y"].indices < 100).mean() >= 0.9  # y's is in B, which comes first in y's array
    assert len(out["y"].indices) == 30 and len(set(out["y"].indices.tolist())) == 30
    summary = out["x"].public_summary()
    assert summary["candidates"] == 200 and summary["fallback"] is None


# --- selection rules ---------------------------------------------------------------------------


def test_rank_breaks_ties_by_noisy_count_then_index():
    hist = Histogram(np.zeros(5), np.array([1.0, 5.0, 3.0, 5.0, -1.0]), np.array([0.0, 2.0, 0.0, 2.0, 0.0]))
    idx, fallback = select_from_histogram(hist, 4, "rank", rng=np.random.default_rng(0))
    assert idx.tolist() == [1, 3, 2, 0] and fallback is None
    idx, _ = select_from_histogram(hist, 10, "rank", rng=np.random.default_rng(0))
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4]  # without replacement: at most all


def test_sample_is_proportional_to_clipped_counts():
    hist = Histogram(np.zeros(3), np.array([3.0, 1.0, 0.0]), np.array([3.0, 1.0, 0.0]))
    idx, fallback = select_from_histogram(hist, 40_000, "sample", rng=np.random.default_rng(5))
    freq = np.bincount(idx, minlength=3) / len(idx)
    np.testing.assert_allclose(freq, [0.75, 0.25, 0.0], atol=0.01)
    assert fallback is None


def test_sample_falls_back_to_noisy_rank_when_everything_is_clipped():
    hist = Histogram(np.zeros(3), np.array([0.5, 1.0, -2.0]), np.zeros(3))
    idx, fallback = select_from_histogram(hist, 5, "sample", rng=np.random.default_rng(0))
    assert fallback == "rank_noisy"
    assert idx.tolist() == [1, 0, 2, 1, 0]


def test_category_without_private_data_still_gets_a_selection(two_clusters):
    rng, a, _, synthetic = two_clusters
    out = pe_select_detailed(
        {"x": _cluster(rng, a, 50)},
        {"x": synthetic, "z": synthetic},
        sigma=0.0,
        n_select=5,
        selection="sample",
        rng=np.random.default_rng(0),
    )
    assert out["z"].fallback == "rank_noisy" and len(out["z"].indices) == 5
    assert not out["z"].histogram.raw_counts.any()


def test_bad_arguments():
    with pytest.raises(ValueError):
        select_from_histogram(Histogram(np.zeros(1), np.zeros(1), np.zeros(1)), 1, "best", rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        dp_histogram(
            np.eye(1, DIM, dtype=np.float32), np.eye(1, DIM, dtype=np.float32), sigma=-1, rng=np.random.default_rng(0)
        )
