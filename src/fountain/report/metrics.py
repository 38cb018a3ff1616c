"""Pure text metrics: tokens, distributions, distinct-n, self-BLEU, near duplicates, KS, readability.

Tokenisation (used by every metric here): the text is casefolded and split into runs of letters
and digits, keeping inner apostrophes (``don't`` is one token); punctuation and whitespace
separate tokens and are dropped. A "word" in the length statistics is such a token.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_TOKEN = re.compile(r"\w+(?:['’]\w+)*")


def tokenize(text: str) -> list[str]:
    """Casefolded word tokens of ``text`` (see the module docstring)."""
    return _TOKEN.findall(text.casefold())


def word_count(text: str) -> int:
    return len(_TOKEN.findall(text))


# --- distributions ------------------------------------------------------------------------------


def describe(values: Iterable[float]) -> dict[str, Any]:
    """n, mean, std, min, p10, median, p90, max of ``values`` (None for an empty input)."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "p10": None, "median": None, "p90": None, "max": None}
    p10, median, p90 = np.percentile(array, [10, 50, 90])
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "p10": float(p10),
        "median": float(median),
        "p90": float(p90),
        "max": float(array.max()),
    }


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical CDFs."""
    x = np.sort(np.asarray(a, dtype=float))
    y = np.sort(np.asarray(b, dtype=float))
    if x.size == 0 or y.size == 0:
        raise ValueError("both samples need at least one value")
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / x.size
    cdf_y = np.searchsorted(y, grid, side="right") / y.size
    return float(np.max(np.abs(cdf_x - cdf_y)))


def ks_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """KS statistic, plus its p-value when scipy is installed."""
    result: dict[str, Any] = {"statistic": ks_statistic(a, b), "pvalue": None}
    try:
        from scipy.stats import ks_2samp
    except ImportError:
        return result
    result["pvalue"] = float(ks_2samp(a, b).pvalue)
    return result


# --- distinct-n ---------------------------------------------------------------------------------


class TokenIndex:
    """All texts' tokens as one integer array, so n-gram statistics of any subset are numpy work.

    ``ids`` concatenates every text's token ids; ``offsets[i]:offsets[i+1]`` is text ``i``.
    """

    def __init__(self, texts: Sequence[str]):
        vocabulary: dict[str, int] = {}
        lookup = vocabulary.setdefault
        ids: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            lengths[i] = len(tokens)
            ids.extend(lookup(token, len(vocabulary)) for token in tokens)
        self.vocabulary_size = len(vocabulary)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.lengths = lengths

    def ngram_codes(self, n: int, texts: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """One int64 code per n-gram of the chosen texts (n-grams never cross texts)."""
        if texts is None:
            starts, stops = self.offsets[:-1], self.offsets[1:]
        else:
            chosen = np.asarray(texts, dtype=np.int64)
            starts, stops = self.offsets[chosen], self.offsets[chosen + 1]
        counts = np.maximum(stops - starts - n + 1, 0)
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # Positions of every n-gram's first token: a ramp per text, built without a Python loop.
        first = np.repeat(starts, counts) + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
        bits = max(1, int(self.vocabulary_size).bit_length())
        if bits * n <= 63:
            code = np.zeros(total, dtype=np.int64)
            for k in range(n):
                code = (code << bits) | self.ids[first + k]
            return code
        # Vocabulary too large to pack: map each distinct n-gram row to a dense code instead.
        rows = np.stack([self.ids[first + k] for k in range(n)], axis=1)
        return np.unique(rows, axis=0, return_inverse=True)[1].astype(np.int64).ravel()

    def distinct(self, n: int, texts: Sequence[int] | np.ndarray | None = None) -> float | None:
        codes = self.ngram_codes(n, texts)
        if codes.size == 0:
            return None
        return float(np.unique(codes).size / codes.size)


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct-n: distinct n-grams / all n-grams over the set (None when there are none).

    N-grams are counted inside each text, never across two texts.
    """
    return TokenIndex(texts).distinct(n)


# --- BLEU ---------------------------------------------------------------------------------------


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _closest_length(length: int, ref_lengths: Iterable[int]) -> int:
    # The reference length closest to the hypothesis length; ties go to the shorter one.
    return min(ref_lengths, key=lambda r: (abs(r - length), r))


def _combine(clipped: Sequence[int], totals: Sequence[int], length: int, ref_length: int) -> float:
    """BLEU from per-order clipped matches and totals, Lin & Och add-one smoothing for n >= 2."""
    if length == 0:
        return 0.0
    if clipped[0] == 0:
        return 0.0
    log_sum = math.log(clipped[0] / totals[0])
    for order in range(1, len(clipped)):
        log_sum += math.log((clipped[order] + 1) / (totals[order] + 1))
    brevity = 1.0 if length > ref_length else math.exp(1.0 - ref_length / length)
    return brevity * math.exp(log_sum / len(clipped))


def sentence_bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """BLEU of one tokenised hypothesis against tokenised references.

    Modified n-gram precision (counts clipped by the most any one reference holds), uniform
    weights over orders 1..max_n, brevity penalty against the closest reference length, and add-one
    smoothing of the orders 2..max_n precisions (Lin & Och 2004) so a short text without a
    matching 4-gram does not score 0.
    """
    if not references:
        raise ValueError("BLEU needs at least one reference")
    clipped, totals = [], []
    for n in range(1, max_n + 1):
        hyp = _ngrams(hypothesis, n)
        best: Counter = Counter()
        for reference in references:
            best |= _ngrams(reference, n)  # | keeps the maximum count of each n-gram
        clipped.append(sum(min(count, best[gram]) for gram, count in hyp.items()))
        totals.append(sum(hyp.values()))
    ref_length = _closest_length(len(hypothesis), (len(r) for r in references))
    return _combine(clipped, totals, len(hypothesis), ref_length)


def self_bleu(texts: Sequence[str], *, max_n: int = 4, sample: int | None = 500, seed: int = 0) -> float | None:
    """Mean BLEU of each text against all the others as references (Zhu et al. 2018, Texygen).

    With more than ``sample`` texts a random subset of that size (fixed ``seed``) is used, both as
    hypotheses and references: self-BLEU grows with the number of references, so compare values
    measured on samples of the same size. Higher means less diverse. None with fewer than 2 texts.

    Each text is scored against the other texts without a pairwise loop: for every n-gram the two
    largest counts over the sample (and which text holds the largest) give "the most any other
    text holds" directly.
    """
    chosen = list(texts)
    if sample is not None and len(chosen) > sample:
        chosen = random.Random(seed).sample(chosen, sample)
    tokens = [tokenize(text) for text in chosen]
    tokens = [t for t in tokens if t]
    if len(tokens) < 2:
        return None
    lengths = sorted(len(t) for t in tokens)
    per_order: list[list[Counter]] = []
    tops: list[dict[tuple, tuple[int, int, int]]] = []  # gram -> (max count, its text, 2nd max)
    for n in range(1, max_n + 1):
        counters = [_ngrams(t, n) for t in tokens]
        top: dict[tuple, tuple[int, int, int]] = {}
        for index, counter in enumerate(counters):
            for gram, count in counter.items():
                first = top.get(gram)
                if first is None:
                    top[gram] = (count, index, 0)
                elif count > first[0]:
                    top[gram] = (count, index, first[0])
                elif count > first[2]:
                    top[gram] = (first[0], first[1], count)
        per_order.append(counters)
        tops.append(top)
    scores = []
    for index, hyp in enumerate(tokens):
        clipped, totals = [], []
        for counters, top in zip(per_order, tops):
            matched = 0
            for gram, count in counters[index].items():
                best, holder, second = top[gram]
                matched += min(count, second if holder == index else best)
            clipped.append(matched)
            totals.append(sum(counters[index].values()))
        ref_length = _closest_other_length(lengths, len(hyp))
        scores.append(_combine(clipped, totals, len(hyp), ref_length))
    return float(np.mean(scores))


def _closest_other_length(sorted_lengths: list[int], length: int) -> int:
    """Closest length among the other texts (the hypothesis's own length is removed once)."""
    import bisect

    others = list(sorted_lengths)
    del others[bisect.bisect_left(others, length)]
    position = bisect.bisect_left(others, length)
    candidates = others[max(position - 1, 0) : position + 1]
    return _closest_length(length, candidates)


# --- near duplicates ----------------------------------------------------------------------------


def exact_duplicate_rate(texts: Sequence[str]) -> float | None:
    """Fraction of texts whose normalised text equals an earlier text's (what dedup would drop)."""
    from fountain.raters.dedup import normalize_text

    return exact_rate_of_keys([normalize_text(text) for text in texts])


def exact_rate_of_keys(keys: Sequence[str]) -> float | None:
    """Fraction of keys (normalised texts) equal to an earlier key."""
    if not keys:
        return None
    return (len(keys) - len(set(keys))) / len(keys)


class NearDuplicates:
    """MinHash signatures of every text, computed once, to measure any subset's duplicate rate.

    The procedure of dedup's MinHash stage: word 3-gram shingles of the normalised text,
    datasketch MinHash (128 permutations) and LSH for candidates, each candidate confirmed with
    the exact Jaccard of the shingle sets; texts are visited in order and a text counts as a
    duplicate when a kept earlier text reaches the threshold. Raises MissingDependencyError
    without datasketch.
    """

    def __init__(self, texts: Sequence[str], *, threshold: float = 0.9, num_perm: int = 128, seed: int = 1):
        from fountain.errors import MissingDependencyError
        from fountain.raters.dedup import shingles

        try:
            from datasketch import MinHash
        except ImportError:
            raise MissingDependencyError(
                "the MinHash duplicate rate needs the 'datasketch' package", hint="pip install 'fountain[embed]'"
            ) from None
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        self.threshold, self.num_perm = threshold, num_perm
        self.shingles = [shingles(text) for text in texts]
        todo = [i for i, found in enumerate(self.shingles) if found]
        hashes = MinHash.bulk(
            [[s.encode("utf-8") for s in self.shingles[i]] for i in todo], num_perm=num_perm, seed=seed
        )
        self.hashes = dict(zip(todo, hashes))

    def rate(self, members: Sequence[int]) -> float | None:
        """Fraction of ``members`` (indices, in order) that duplicate an earlier kept member."""
        from datasketch import MinHashLSH

        if not len(members):
            return None
        # Tuned below the threshold for recall; the exact Jaccard below decides (as dedup does).
        lsh = MinHashLSH(threshold=min(max(self.threshold - 0.1, 0.05), 0.9), num_perm=self.num_perm)
        duplicates = 0
        for i in members:
            signature = self.hashes.get(i)
            if signature is None:
                continue  # empty text: the exact rate's business
            mine = self.shingles[i]
            if any(
                len(mine & self.shingles[j]) / len(mine | self.shingles[j]) >= self.threshold
                for j in lsh.query(signature)
            ):
                duplicates += 1
            else:
                lsh.insert(i, signature)
        return duplicates / len(members)


def minhash_duplicate_rate(texts: Sequence[str], *, threshold: float = 0.9, num_perm: int = 128) -> float | None:
    """Fraction of texts that have an earlier text with word-3-gram Jaccard >= ``threshold``.

    See :class:`NearDuplicates`; on a deduplicated dataset it should be near 0.
    """
    return NearDuplicates(texts, threshold=threshold, num_perm=num_perm).rate(range(len(texts)))


# --- readability --------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def readability_backend() -> tuple[str | None, str | None]:
    """Which syllable counter readability can use offline: ("textstat"|"pyphen"|None, note).

    textstat looks English syllables up in NLTK's cmudict and, when that corpus is not installed,
    downloads it at first use: a network call. Without the corpus the same Flesch formulas are
    computed here with pyphen's hyphenation (textstat's own fallback for unknown words).
    """
    from importlib.util import find_spec

    if find_spec("textstat") is None or find_spec("pyphen") is None:
        return None, "textstat is not installed (pip install 'fountain[report]')"
    try:
        import nltk

        nltk.data.find("corpora/cmudict")
        return "textstat", None
    except (ImportError, LookupError):
        return "pyphen", (
            "NLTK's cmudict is not installed, so syllables are counted with pyphen "
            "(python -m nltk.downloader cmudict for textstat's dictionary counts)"
        )


def readability(texts: Sequence[str], backend: str = "textstat") -> dict[str, Any]:
    """Flesch reading ease and Flesch–Kincaid grade of each text, summarised (mean/median/...).

    Reading ease: 206.835 − 1.015·(words/sentence) − 84.6·(syllables/word), higher is easier
    (60–70 plain English); grade: 0.39·(words/sentence) + 11.8·(syllables/word) − 15.59, a US
    school grade.
    """
    ease, grade = [], []
    if backend == "textstat":
        import textstat

        for text in texts:
            if word_count(text):
                ease.append(float(textstat.flesch_reading_ease(text)))
                grade.append(float(textstat.flesch_kincaid_grade(text)))
    elif backend == "pyphen":
        import pyphen

        hyphenator = pyphen.Pyphen(lang="en_US")
        cache: dict[str, int] = {}
        for text in texts:
            words = _TOKEN.findall(text.casefold())
            if not words:
                continue
            syllables = 0
            for word in words:
                count = cache.get(word)
                if count is None:
                    count = cache[word] = len(hyphenator.positions(word)) + 1
                syllables += count
            sentences = max(1, len(_SENTENCE_END.findall(text.strip() + " ")))
            per_sentence, per_word = len(words) / sentences, syllables / len(words)
            ease.append(206.835 - 1.015 * per_sentence - 84.6 * per_word)
            grade.append(0.39 * per_sentence + 11.8 * per_word - 15.59)
    else:
        raise ValueError(f"unknown readability backend {backend!r}")
    return {"flesch_reading_ease": describe(ease), "flesch_kincaid_grade": describe(grade)}
