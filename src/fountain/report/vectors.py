"""Pure metrics on embedding matrices (rows are samples): spread, and synthetic vs real.

Inputs are float arrays of shape (n, dim). Functions that speak of cosine similarity L2-normalise
their inputs themselves, so raw vectors are fine.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1024  # rows per block of a distance matrix: bounds memory at about CHUNK x n floats


def normalise(vectors: np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1.0, norms)


def mean_pairwise_distance(vectors: np.ndarray) -> float | None:
    """Mean cosine distance (1 − cosine) over all pairs i ≠ j; higher means more spread out.

    Exact and linear in n: for unit vectors the sum of all pairwise cosines is
    ``|Σx|² − n`` (the squared norm of the sum minus the diagonal).
    """
    unit = normalise(vectors)
    n = unit.shape[0]
    if n < 2:
        return None
    total = unit.sum(axis=0)
    mean_cosine = (float(total @ total) - float((unit * unit).sum())) / (n * (n - 1))
    return 1.0 - mean_cosine


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets (as FID does for images).

    ``|μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^½)``. The trace of the matrix square root is taken as
    the sum of the square roots of the eigenvalues of ``Σa^½ Σb Σa^½`` (similar to ``Σa Σb``,
    and symmetric positive semi-definite, so no complex round-off as with a general sqrtm).
    0 for identical sets; it grows with the shift of the means and the mismatch of the spreads.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError("both sets must be (n, dim) arrays of the same dim")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("each set needs at least 2 samples for a covariance")
    mean_gap = x.mean(axis=0) - y.mean(axis=0)
    cov_x = np.cov(x, rowvar=False)
    cov_y = np.cov(y, rowvar=False)
    values, vecs = np.linalg.eigh(cov_x)
    root_x = (vecs * np.sqrt(np.clip(values, 0.0, None))) @ vecs.T
    middle = root_x @ cov_y @ root_x
    trace_root = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    distance = float(mean_gap @ mean_gap) + float(np.trace(cov_x) + np.trace(cov_y)) - 2.0 * trace_root
    return max(distance, 0.0)


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance of each row to its k-th nearest neighbour among the other rows."""
    radii = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _CHUNK):
        block = _squared_distances(x[start : start + _CHUNK], x)
        # Column k after sorting: column 0 is the row itself (distance 0).
        radii[start : start + _CHUNK] = np.partition(block, k, axis=1)[:, k]
    return radii


def _inside_manifold(queries: np.ndarray, support: np.ndarray, radii: np.ndarray) -> np.ndarray:
    inside = np.zeros(queries.shape[0], dtype=bool)
    for start in range(0, queries.shape[0], _CHUNK):
        block = _squared_distances(queries[start : start + _CHUNK], support)
        inside[start : start + _CHUNK] = (block <= radii[None, :] + 1e-12).any(axis=1)
    return inside


def knn_precision_recall(real: np.ndarray, synthetic: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k nearest neighbours.

    Each set's manifold is the union of balls around its samples, each ball reaching the sample's
    k-th nearest neighbour in its own set. Precision: fraction of synthetic samples inside the
    real manifold (realism). Recall: fraction of real samples inside the synthetic manifold
    (coverage of the real variety). Distances are Euclidean on L2-normalised vectors.
    """
    r, s = normalise(real), normalise(synthetic)
    if r.shape[0] <= k or s.shape[0] <= k:
        raise ValueError(f"each set needs more than k={k} samples")
    precision = float(_inside_manifold(s, r, _knn_radii(r, k)).mean())
    recall = float(_inside_manifold(r, s, _knn_radii(s, k)).mean())
    return precision, recall


def nearest_similarity(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """For each synthetic row, the cosine similarity of its nearest real row."""
    r, s = normalise(real), normalise(synthetic)
    best = np.empty(s.shape[0])
    for start in range(0, s.shape[0], _CHUNK):
        best[start : start + _CHUNK] = (s[start : start + _CHUNK] @ r.T).max(axis=1)
    return best


def memorisation_rate(real: np.ndarray, synthetic: np.ndarray, threshold: float = 0.95) -> float:
    """Fraction of synthetic samples whose nearest real sample has cosine similarity > threshold."""
    return float((nearest_similarity(real, synthetic) > threshold).mean())
