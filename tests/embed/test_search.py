import numpy as np
import pytest

from fountain.embed import search
from fountain.embed.search import NeighborIndex, knn, self_knn

HAS_FAISS = search._faiss() is not None


def unit(rng, n, d=32):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(q, b, k):
    scores = q @ b.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), order


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return unit(rng, 40), unit(rng, 700)


@pytest.mark.parametrize("use_numpy", [True, False])
def test_exact_matches_brute_force(data, use_numpy):
    if not use_numpy and not HAS_FAISS:
        pytest.skip("faiss not installed")
    q, b = data
    sims, idx = knn(q, b, 7, use_numpy=use_numpy)
    want_sims, want_idx = brute(q, b, 7)
    assert idx.shape == (40, 7) and idx.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()  # sorted, best first


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_faiss_and_numpy_agree(data):
    q, b = data
    assert knn(q, b, 5)[1].tolist() == knn(q, b, 5, use_numpy=True)[1].tolist()
    assert NeighborIndex(b).backend in ("faiss", "faiss-gpu")
    assert search.backend() in ("faiss", "faiss-gpu")


def test_numpy_blocking_gives_same_answer(data, monkeypatch):
    q, b = data
    want = knn(q, b, 6, use_numpy=True)[1]
    # Blocks of 100 scores force both query and base blocking with a running top-k merge.
    monkeypatch.setattr(search, "NUMPY_BLOCK_BYTES", 4 * 100)
    np.testing.assert_array_equal(knn(q, b, 6, use_numpy=True)[1], want)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_approximate_index_has_high_recall():
    rng = np.random.default_rng(2)
    q, b = unit(rng, 50), unit(rng, 3000)
    index = NeighborIndex(b, exact=False)
    assert index.backend == "faiss-hnsw" and not index.exact
    _, got = index.search(q, 10)
    _, want = brute(q, b, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
    assert recall > 0.9


def test_exact_default_switches_above_threshold(monkeypatch):
    rng = np.random.default_rng(3)
    b = unit(rng, 30)
    assert NeighborIndex(b, use_numpy=True).exact
    monkeypatch.setattr(search, "EXACT_MAX_BASE", 10)
    if HAS_FAISS:
        assert NeighborIndex(b).backend == "faiss-hnsw"
    assert NeighborIndex(b, use_numpy=True).exact  # numpy is always exact


@pytest.mark.parametrize("use_numpy", [True, False])
def test_k_larger_than_base_and_empty_inputs(use_numpy):
    if not use_numpy and not HAS_FAISS:
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(4)
    q, b = unit(rng, 3), unit(rng, 4)
    sims, idx = knn(q, b, 10, use_numpy=use_numpy)
    assert idx.shape == (3, 4)
    assert sorted(idx[0].tolist()) == [0, 1, 2, 3]
    sims, idx = knn(np.zeros((0, 32)), b, 3, use_numpy=use_numpy)
    assert sims.shape == idx.shape == (0, 3)
    sims, idx = knn(q, np.zeros((0, 32)), 3, use_numpy=use_numpy)
    assert sims.shape == idx.shape == (3, 0)
    with pytest.raises(ValueError):
        knn(q, b, 0, use_numpy=use_numpy)


@pytest.mark.parametrize("use_numpy", [True, False])
def test_dtype_and_normalisation(use_numpy):
    if not use_numpy and not HAS_FAISS:
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(5)
    raw_b = rng.standard_normal((200, 16)) * rng.uniform(0.1, 10, (200, 1))  # float64, any length
    raw_q = rng.standard_normal((20, 16)) * 3
    sims, idx = knn(raw_q, raw_b, 5, normalize=True, use_numpy=use_numpy)
    nb = raw_b / np.linalg.norm(raw_b, axis=1, keepdims=True)
    nq = raw_q / np.linalg.norm(raw_q, axis=1, keepdims=True)
    want_sims, want_idx = brute(nq, nb, 5)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    assert sims.max() <= 1 + 1e-5
    # float64 input gives the same neighbours as float32
    f32 = knn(nq.astype(np.float32), nb.astype(np.float32), 5, use_numpy=use_numpy)[1]
    np.testing.assert_array_equal(knn(nq, nb, 5, use_numpy=use_numpy)[1], f32)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        knn(np.zeros(5), np.zeros((3, 5)), 1)
    with pytest.raises(ValueError, match="dimension"):
        knn(np.ones((2, 4)), np.ones((3, 5)), 1)
    with pytest.raises(ValueError, match="NaN"):
        knn(np.full((1, 3), np.nan), np.ones((3, 3)), 1)


@pytest.mark.parametrize("use_numpy", [True, False])
def test_self_knn_excludes_self_even_with_duplicates(use_numpy):
    if not use_numpy and not HAS_FAISS:
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(6)
    v = unit(rng, 50)
    v[10] = v[3]  # an exact duplicate pair
    v[11] = v[3]
    sims, idx = self_knn(v, 4, use_numpy=use_numpy)
    assert idx.shape == (50, 4)
    assert not (idx == np.arange(50)[:, None]).any()
    assert set(idx[3, :2].tolist()) == {10, 11}
    np.testing.assert_allclose(sims[3, :2], 1.0, atol=1e-5)
    assert self_knn(v[:1], 3, use_numpy=use_numpy)[1].shape == (1, 0)
    assert self_knn(v[:3], 10, use_numpy=use_numpy)[1].shape == (3, 2)
