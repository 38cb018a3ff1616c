"""Benchmark the raters' neighbour searches: PE voting and the embedding stage of dedup.

Random L2-normalised vectors (fixed seed) stand in for embeddings: 100,000 synthetic samples and
10,000 real ones, 384 dimensions (all-MiniLM-L6-v2's size) by default. Each workload runs the
real rater code (``pe.vote_counts``, ``dedup.embedding_duplicates``) once per search backend:

- ``faiss``: exact ``IndexFlatIP`` on the CPU (``search.py``'s default below 200,000 rows), or
  ``faiss-gpu``, the same exact search on a CUDA GPU, which search.py picks by itself when the
  faiss build and the machine have one;
- ``numpy``: brute-force blocked matrix products (``search.py``'s fallback without faiss).

The backends must agree: the script checks that every backend gives the same votes and the same
duplicate findings (1% planted near-duplicates), and exits non-zero otherwise.

    python benchmarks/bench_raters.py                    # full size (minutes on 2 cores)
    python benchmarks/bench_raters.py --synthetic 20000 --real 2000   # quick
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from unittest import mock

import numpy as np

from fountain.embed import search
from fountain.raters.dedup import embedding_duplicates
from fountain.raters.pe import vote_counts


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def with_near_duplicates(rng: np.random.Generator, vectors: np.ndarray, fraction: float) -> np.ndarray:
    """Overwrite ``fraction`` of the rows with small perturbations of earlier rows (cosine ~0.97)."""
    out = vectors.copy()
    n = len(out)
    targets = rng.choice(np.arange(n // 2, n), size=int(n * fraction), replace=False)
    for t in targets:
        source = out[rng.integers(0, n // 2)]
        noisy = source + 0.25 * rng.standard_normal(source.shape, dtype=np.float32) / np.sqrt(len(source))
        out[t] = noisy / np.linalg.norm(noisy)
    return out


def backends() -> dict[str, dict]:
    """Keyword arguments for search.knn/self_knn that force each available backend.

    search.py puts exact faiss searches on the GPU by itself when it can, so the faiss row is
    ``faiss-gpu`` on a CUDA machine with a GPU build of faiss, and ``faiss`` (CPU) elsewhere.
    """
    found = {"numpy": {"use_numpy": True}}
    if search.backend() != "numpy":
        found[search.backend()] = {"exact": True}
    return found


def run_with(kwargs: dict, fn, *args):
    """Call ``fn`` with search.knn/self_knn forced to one backend; returns (result, seconds)."""

    def pick(original):
        @functools.wraps(original)
        def wrapper(*a, **kw):
            return original(*a, **{**kw, **kwargs})

        return wrapper

    with (
        mock.patch.object(search, "knn", pick(search.knn)),
        mock.patch.object(search, "self_knn", pick(search.self_knn)),
    ):
        start = time.perf_counter()
        result = fn(*args)
        return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=1, help="PE neighbours per private sample")
    parser.add_argument("--neighbours", type=int, default=16, help="dedup neighbours per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    synthetic = with_near_duplicates(rng, unit_rows(rng, args.synthetic, args.dim), 0.01)
    real = unit_rows(rng, args.real, args.dim)
    results = []
    reference_votes = reference_dups = None
    ok = True
    for name, kwargs in backends().items():
        votes, t_vote = run_with(kwargs, vote_counts, real, synthetic, args.k)
        dups, t_dedup = run_with(kwargs, embedding_duplicates, synthetic, range(len(synthetic)), 0.9, args.neighbours)
        pairs = {(d.index, d.duplicate_of_index) for d in dups}
        if reference_votes is None:
            reference_votes, reference_dups = votes, pairs
        else:
            # float32 ties may resolve differently between BLAS and faiss kernels: allow a handful.
            vote_diff = int(np.abs(votes - reference_votes).sum())
            dup_diff = len(pairs ^ reference_dups)
            if vote_diff > max(2, args.real // 1000) or dup_diff > max(2, len(pairs) // 1000):
                ok = False
                print(f"MISMATCH {name}: {vote_diff} votes, {dup_diff} duplicate pairs differ", file=sys.stderr)
        results.append(
            {
                "backend": name,
                "pe_voting_s": round(t_vote, 3),
                "dedup_embedding_s": round(t_dedup, 3),
                "duplicates_found": len(pairs),
            }
        )

    info = {
        "synthetic": args.synthetic,
        "real": args.real,
        "dim": args.dim,
        "k": args.k,
        "neighbours": args.neighbours,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "results": results,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"{args.synthetic:,} synthetic x {args.real:,} real, dim {args.dim}, "
            f"{os.cpu_count()} CPU(s); planted near-duplicates: {int(args.synthetic * 0.01):,}"
        )
        print(f"{'backend':<10} {'PE voting (s)':>14} {'dedup embedding (s)':>20} {'duplicates':>11}")
        for row in results:
            print(
                f"{row['backend']:<10} {row['pe_voting_s']:>14.2f} {row['dedup_embedding_s']:>20.2f} "
                f"{row['duplicates_found']:>11,}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
