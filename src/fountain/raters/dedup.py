"""Deduplication of generated conversations: exact, MinHash LSH, then embedding cosine.

Three stages run in order, each on the samples the previous stages kept (as Persona Hub did:
MinHash, then embeddings):

1. **exact**: identical text after :func:`normalize_text` (casefold, punctuation and symbols
   removed, whitespace collapsed);
2. **minhash**: Jaccard similarity of word 3-gram shingle sets >= 0.9, found with
   datasketch's MinHash LSH (128 permutations); each candidate pair the LSH index proposes is
   confirmed with the exact Jaccard of the two shingle sets before anything is dropped;
3. **embedding**: cosine similarity of the (L2-normalised) embeddings >= 0.9, found with
   ``search.self_knn``. Two conversations of one *family* (a seed and the derivations grown from
   it, given as ``families``) share the seed's topic by design: genuine Janus derivations of one
   seed score 0.90-0.93 against each other on their new turns alone. Within a family the
   embedding stage asks for ``family_threshold`` (0.95) instead: a paraphrased copy still scores
   above it, and the exact and MinHash stages treat every pair alike.

Samples are visited in index order and the earlier sample is always the one kept, so the result
does not depend on which of two duplicates the LSH or the k-NN search happens to return first.
The caller (the engine) writes each finding to ``rejects.jsonl`` as ``duplicate:<method>`` with
the id of the kept sample.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

_NON_WORD = re.compile(r"[\W_]+")


def normalize_text(text: str) -> str:
    """Casefold, replace punctuation and symbols by spaces, collapse whitespace."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


@dataclass(frozen=True)
class DedupSettings:
    """Which stages run and their thresholds (all stages on by default)."""

    exact: bool = True
    minhash: bool = True
    minhash_threshold: float = 0.9
    num_perm: int = 128
    shingle_size: int = 3
    minhash_seed: int = 1
    embedding: bool = True
    embedding_threshold: float = 0.9
    # Within one family (a seed and its derivations, see ``families`` in :func:`dedup`): the same
    # topic by design, so only a near-copy counts (planted paraphrases score above 0.97).
    family_threshold: float = 0.95
    # Neighbours looked at per sample in the embedding stage. A sample with more than this many
    # earlier near-duplicates, all already dropped, could be missed; 16 is ample in practice.
    neighbours: int = 16


@dataclass(frozen=True)
class DuplicateFinding:
    """Sample ``index`` duplicates the kept sample ``duplicate_of_index`` (by ``method``)."""

    index: int
    duplicate_of_index: int
    method: str  # "exact" | "minhash" | "embedding"
    score: float

    @property
    def reason(self) -> str:
        return f"duplicate:{self.method}"


class DedupFindings(list[DuplicateFinding]):
    """The findings (a list of DuplicateFinding) plus which stages ran and which were skipped."""

    def __init__(
        self,
        findings: Iterable[DuplicateFinding] = (),
        *,
        stages_run: Iterable[str] = (),
        stages_skipped: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ):
        super().__init__(findings)
        self.stages_run: list[str] = list(stages_run)
        self.stages_skipped: dict[str, str] = dict(stages_skipped)

    @property
    def dropped(self) -> set[int]:
        return {finding.index for finding in self}


def shingles(text: str, size: int = 3) -> set[str]:
    """Word ``size``-grams of the normalised text (the whole text when it is shorter)."""
    words = normalize_text(text).split()
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def dedup(
    samples_texts: Sequence[str],
    *,
    embeddings: np.ndarray | None = None,
    settings: DedupSettings | None = None,
    families: Sequence[Hashable] | None = None,
) -> DedupFindings:
    """Find duplicates among ``samples_texts`` (earlier samples win).

    ``embeddings`` (n, dim), L2-normalised and in the same order, enables the embedding stage;
    without them that stage is skipped and the result says so in ``stages_skipped``.
    ``families`` (one key per sample, e.g. the id of the seed it grew from) makes the embedding
    stage compare two samples of one family at ``settings.family_threshold``.
    """
    settings = settings or DedupSettings()
    n = len(samples_texts)
    if embeddings is not None and len(embeddings) != n:
        raise ValueError(f"{len(embeddings)} embeddings for {n} samples")
    findings: list[DuplicateFinding] = []
    alive = list(range(n))
    run: list[str] = []
    skipped: dict[str, str] = {}

    if settings.exact:
        found = exact_duplicates(samples_texts, alive)
        findings += found
        alive = _survivors(alive, found)
        run.append("exact")
    else:
        skipped["exact"] = "disabled"

    if settings.minhash:
        found = minhash_duplicates(samples_texts, alive, settings)
        findings += found
        alive = _survivors(alive, found)
        run.append("minhash")
    else:
        skipped["minhash"] = "disabled"

    if not settings.embedding:
        skipped["embedding"] = "disabled"
    elif embeddings is None:
        skipped["embedding"] = "no embeddings given"
        logger.info("dedup: embedding stage skipped (no embeddings given)")
    else:
        found = embedding_duplicates(
            np.asarray(embeddings, dtype=np.float32),
            alive,
            settings.embedding_threshold,
            settings.neighbours,
            families=families,
            family_threshold=settings.family_threshold,
        )
        findings += found
        run.append("embedding")

    findings.sort(key=lambda finding: finding.index)
    return DedupFindings(findings, stages_run=run, stages_skipped=skipped)


def _survivors(alive: list[int], found: list[DuplicateFinding]) -> list[int]:
    dropped = {finding.index for finding in found}
    return [i for i in alive if i not in dropped]


def exact_duplicates(texts: Sequence[str], indices: Sequence[int]) -> list[DuplicateFinding]:
    """Samples whose normalised text equals an earlier sample's."""
    first: dict[str, int] = {}
    found = []
    for i in indices:
        key = normalize_text(texts[i])
        if key in first:
            found.append(DuplicateFinding(i, first[key], "exact", 1.0))
        else:
            first[key] = i
    return found


def minhash_duplicates(texts: Sequence[str], indices: Sequence[int], settings: DedupSettings) -> list[DuplicateFinding]:
    """Samples whose Jaccard similarity (word shingles) with a kept earlier sample >= threshold.

    MinHash LSH finds the candidate pairs (sub-quadratic); the exact Jaccard confirms them.
    """
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        from fountain.errors import MissingDependencyError

        raise MissingDependencyError(
            "MinHash deduplication needs the 'datasketch' package",
            hint="pip install 'fountain[embed]', or turn the minhash dedup stage off",
        ) from None
    shingle_sets = {i: shingles(texts[i], settings.shingle_size) for i in indices}
    todo = [i for i in indices if shingle_sets[i]]  # empty texts: the exact stage's business
    hashes = MinHash.bulk(
        [[s.encode("utf-8") for s in shingle_sets[i]] for i in todo],
        num_perm=settings.num_perm,
        seed=settings.minhash_seed,
    )
    if not 0.0 < settings.minhash_threshold <= 1.0:
        raise ValueError(f"minhash_threshold must lie in (0, 1], got {settings.minhash_threshold}")
    # The index is tuned 0.1 below the threshold: more candidates, better recall near the
    # threshold, and the exact check below removes the extra ones. (datasketch also cannot tune
    # 128 permutations for thresholds far above 0.9.)
    lsh_threshold = min(max(settings.minhash_threshold - 0.1, 0.05), 0.9)
    lsh = MinHashLSH(threshold=lsh_threshold, num_perm=settings.num_perm)
    by_index = dict(zip(todo, hashes))
    found = []
    for i in todo:
        best, best_score = -1, -1.0
        for j in lsh.query(by_index[i]):
            # LSH only proposes candidates; the exact Jaccard of the shingle sets decides, so
            # the MinHash estimate's noise (~0.03 at 128 permutations) never drops a sample.
            score = _jaccard(shingle_sets[i], shingle_sets[j])
            if score >= settings.minhash_threshold and (score > best_score or (score == best_score and j < best)):
                best, best_score = j, score
        if best >= 0:
            found.append(DuplicateFinding(i, best, "minhash", float(best_score)))
        else:
            lsh.insert(i, by_index[i])
    return found


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def embedding_duplicates(
    embeddings: np.ndarray,
    indices: Sequence[int],
    threshold: float,
    neighbours: int = 16,
    *,
    families: Sequence[Hashable] | None = None,
    family_threshold: float | None = None,
) -> list[DuplicateFinding]:
    """Samples whose cosine similarity with a kept earlier sample >= ``threshold``.

    "Earlier" is the order of ``indices`` (ascending when called from :func:`dedup`). With
    ``families`` (a key per sample, indexed like ``embeddings``), two samples of the same family
    must reach ``family_threshold`` (at least ``threshold``) instead.
    """
    from fountain.embed.search import self_knn

    indices = list(indices)
    if len(indices) < 2:
        return []
    subset = np.ascontiguousarray(embeddings[indices], dtype=np.float32)
    sims, nbrs = self_knn(subset, neighbours)  # each row's own index is already removed
    # Only rows with an earlier neighbour above the threshold can be duplicates: find them with
    # array operations, then walk just those in order (most rows have none).
    rows = np.arange(len(indices))[:, None]
    candidate = (sims >= threshold) & (nbrs >= 0) & (nbrs < rows)
    dropped: set[int] = set()  # positions in ``indices``
    found = []
    for row in np.flatnonzero(candidate.any(axis=1)):
        best, best_score = -1, -1.0
        for sim, col in zip(sims[row][candidate[row]], nbrs[row][candidate[row]]):
            # Only an earlier sample that was itself kept can absorb this one.
            if int(col) in dropped:
                continue
            if (
                families is not None
                and family_threshold is not None
                and sim < family_threshold
                and families[indices[row]] == families[indices[int(col)]]
            ):
                continue  # one seed's family shares its topic by design: only a near-copy counts
            if sim > best_score or (sim == best_score and col < best):
                best, best_score = int(col), float(sim)
        if best >= 0:
            dropped.add(int(row))
            found.append(DuplicateFinding(indices[row], indices[best], "embedding", best_score))
    return found
