"""Embedding metrics of the report on constructed vectors with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fountain.report.vectors import (
    frechet_distance,
    knn_precision_recall,
    mean_pairwise_distance,
    memorisation_rate,
    nearest_similarity,
)


def cluster(center: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return center + spread * rng.standard_normal((n, center.size))


def test_precision_and_recall_are_one_on_identical_sets():
    points = cluster(np.ones(8), 40, 0.3, seed=0)
    assert knn_precision_recall(points, points.copy(), k=3) == (1.0, 1.0)


def test_precision_and_recall_near_zero_on_separated_clusters():
    dim = 16
    a, b = np.zeros(dim), np.zeros(dim)
    a[0], b[1] = 1.0, 1.0  # orthogonal directions: far apart after normalisation
    real = cluster(a, 50, 0.05, seed=1)
    synthetic = cluster(b, 50, 0.05, seed=2)
    precision, recall = knn_precision_recall(real, synthetic, k=3)
    assert precision == 0.0 and recall == 0.0


def test_precision_high_recall_low_when_synthetic_covers_one_mode_of_two():
    # Low dimension and 100 samples per mode: the k-NN balls estimate each manifold well.
    dim = 4
    a, b = np.zeros(dim), np.zeros(dim)
    a[0], b[1] = 1.0, 1.0
    real = np.vstack([cluster(a, 100, 0.05, seed=3), cluster(b, 100, 0.05, seed=4)])
    synthetic = cluster(a, 100, 0.05, seed=5)  # realistic, but only half the variety
    precision, recall = knn_precision_recall(real, synthetic, k=3)
    assert precision > 0.9
    assert 0.35 < recall < 0.55


def test_knn_precision_recall_needs_more_than_k_samples():
    with pytest.raises(ValueError):
        knn_precision_recall(np.ones((3, 4)), np.ones((10, 4)), k=3)


def test_frechet_distance_zero_for_identical_and_positive_for_shifted():
    points = cluster(np.zeros(6), 200, 1.0, seed=6)
    assert frechet_distance(points, points) == pytest.approx(0.0, abs=1e-8)
    shifted = points + 2.0
    # Same covariance, means 2 apart in each of 6 dimensions: |mu_a - mu_b|^2 = 6 * 4.
    assert frechet_distance(points, shifted) == pytest.approx(24.0, rel=1e-6)


def test_frechet_distance_matches_the_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4000, 3)) * np.array([1.0, 2.0, 3.0])
    b = rng.standard_normal((4000, 3)) * np.array([2.0, 2.0, 1.0]) + np.array([1.0, 0.0, 0.0])
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    root = scipy_linalg.sqrtm(cov_a @ cov_b).real
    mean_gap = a.mean(0) - b.mean(0)
    expected = mean_gap @ mean_gap + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    # and roughly the population value: 1 + (1-2)^2 + (2-2)^2 + (3-1)^2 = 6
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.1)


def test_memorisation_flags_a_copied_conversation_only():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((20, 32))
    synthetic = rng.standard_normal((10, 32))
    assert memorisation_rate(real, synthetic) == 0.0
    synthetic[4] = real[11] * 3.0  # a copy (scale does not change the cosine)
    assert memorisation_rate(real, synthetic) == pytest.approx(1 / 10)
    nearest = nearest_similarity(real, synthetic)
    assert nearest[4] == pytest.approx(1.0)
    assert np.argmax(nearest) == 4


def test_mean_pairwise_distance_matches_brute_force():
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((30, 5))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T
    brute = np.mean([1 - cosines[i, j] for i in range(30) for j in range(30) if i != j])
    assert mean_pairwise_distance(vectors) == pytest.approx(brute)
    assert mean_pairwise_distance(np.ones((5, 3))) == pytest.approx(0.0)
    assert mean_pairwise_distance(np.ones((1, 3))) is None
