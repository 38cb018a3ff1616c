"""Pure text metrics of the report, against answers computed by hand."""

from __future__ import annotations

import math

import pytest

from fountain.report import metrics
from fountain.report.metrics import (
    TokenIndex,
    describe,
    distinct_n,
    ks_statistic,
    self_bleu,
    sentence_bleu,
    tokenize,
)


def test_tokenize_casefolds_keeps_inner_apostrophes_and_drops_punctuation():
    assert tokenize("Don't PANIC, it's fine!") == ["don't", "panic", "it's", "fine"]
    assert tokenize("  ...  ") == []


def test_distinct_n_by_hand():
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 distinct / 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 distinct / 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # trigrams: (the cat sat) (the cat ran) -> 2 / 2
    assert distinct_n(texts, 3) == pytest.approx(1.0)


def test_distinct_n_never_counts_ngrams_across_texts():
    # "a b" + "c d": across the boundary would add (b c); within texts there are 2 bigrams.
    assert distinct_n(["a b", "c d"], 2) == 1.0
    assert distinct_n(["a a", "a a"], 2) == pytest.approx(1 / 2)
    assert distinct_n(["one", "two"], 3) is None


def test_token_index_subsets_match_distinct_n_of_the_subset():
    texts = ["the cat sat on the mat", "a dog sat on a log", "the cat sat again", "dogs and cats"]
    index = TokenIndex(texts)
    for n in (1, 2, 3):
        assert index.distinct(n, [0, 2]) == pytest.approx(distinct_n([texts[0], texts[2]], n))
        assert index.distinct(n) == pytest.approx(distinct_n(texts, n))


def test_sentence_bleu_identical_is_one_and_disjoint_is_zero():
    hyp = tokenize("the quick brown fox jumps over the lazy dog")
    assert sentence_bleu(hyp, [hyp]) == pytest.approx(1.0)
    assert sentence_bleu(hyp, [tokenize("nothing in common here at all")]) == 0.0


def test_sentence_bleu_by_hand_with_add_one_smoothing_and_brevity_penalty():
    hyp = ["a", "b", "c", "d"]
    ref = ["a", "b", "x", "d", "e"]
    # p1 = 3/4; p2: (a b) matches of 3 -> (1+1)/(3+1); p3: 0 of 2 -> 1/3; p4: 0 of 1 -> 1/2
    # brevity: c=4 < r=5 -> exp(1 - 5/4)
    expected = math.exp(1 - 5 / 4) * math.exp(
        (math.log(3 / 4) + math.log(2 / 4) + math.log(1 / 3) + math.log(1 / 2)) / 4
    )
    assert sentence_bleu(hyp, [ref]) == pytest.approx(expected)


def test_sentence_bleu_clips_counts_by_the_best_single_reference():
    hyp = ["the", "the", "the"]
    # The first reference holds "the" twice, the second once: the clip is 2, not 3.
    value = sentence_bleu(hyp, [["the", "the", "cat"], ["the", "dog", "x"]], max_n=1)
    assert value == pytest.approx(2 / 3)


def test_self_bleu_equals_the_mean_of_each_text_against_the_others():
    texts = [
        "the cat sat on the mat today",
        "the cat sat on a log",
        "a dog ran in the park",
        "my cat sat on the mat",
        "completely different words appear here",
        "the the the cat",
    ]
    tokens = [tokenize(t) for t in texts]
    naive = sum(sentence_bleu(tokens[i], tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))) / len(tokens)
    assert self_bleu(texts, sample=None) == pytest.approx(naive)


def test_self_bleu_orders_repetitive_above_varied_and_samples_with_a_fixed_seed():
    same = ["please water the tomatoes every morning before work"] * 5
    varied = [
        "water tomatoes at dawn",
        "prune roses in winter",
        "compost needs brown leaves",
        "mint spreads through pots",
        "basil hates cold nights",
    ]
    assert self_bleu(same, sample=None) == pytest.approx(1.0)
    assert self_bleu(varied, sample=None) < 0.2
    many = [f"text number {i} about topic {i % 7}" for i in range(50)]
    assert self_bleu(many, sample=10, seed=3) == self_bleu(many, sample=10, seed=3)
    assert self_bleu(["only one"]) is None


def test_describe_percentiles():
    stats = describe(range(1, 11))
    assert stats["n"] == 10 and stats["min"] == 1 and stats["max"] == 10
    assert stats["mean"] == pytest.approx(5.5) and stats["median"] == pytest.approx(5.5)
    assert stats["p10"] == pytest.approx(1.9) and stats["p90"] == pytest.approx(9.1)
    assert describe([])["mean"] is None


def test_ks_statistic_on_known_samples():
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([1, 2, 3], [10, 11, 12]) == 1.0
    # CDFs of [1,2,3,4] and [3,4,5,6] differ most at x=2: 0.5 vs 0.
    assert ks_statistic([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [1, 5, 2, 8, 3, 9, 4], [2, 7, 7, 10, 12, 6]
    assert ks_statistic(a, b) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic)


def test_exact_and_minhash_duplicate_rates():
    base = (
        "the counsellor listens first and asks one question at a time before offering any advice "
        "about money chores and weekly sessions with the partner"
    )
    texts = [base, base.upper() + "!", base + " today", "a completely different conversation about roses"]
    assert metrics.exact_duplicate_rate(texts) == pytest.approx(1 / 4)  # only the case/punctuation copy
    pytest.importorskip("datasketch")
    # The copy and the one-word extension are near duplicates of the first (Jaccard >= 0.9).
    assert metrics.minhash_duplicate_rate(texts) == pytest.approx(2 / 4)
    assert metrics.minhash_duplicate_rate(texts[3:]) == 0.0


def test_readability_pyphen_backend_orders_simple_above_complex_text():
    pytest.importorskip("pyphen")
    simple = metrics.readability(["The cat sat. The dog ran. We had fun."], "pyphen")
    hard = metrics.readability(
        [
            "Notwithstanding considerable institutional heterogeneity, "
            "interdisciplinary collaboration necessitates organisational flexibility."
        ],
        "pyphen",
    )
    assert simple["flesch_reading_ease"]["mean"] > 90 > hard["flesch_reading_ease"]["mean"]
    assert simple["flesch_kincaid_grade"]["mean"] < hard["flesch_kincaid_grade"]["mean"]


def test_readability_backend_never_downloads(monkeypatch):
    nltk = pytest.importorskip("nltk")
    pytest.importorskip("textstat")

    def missing(resource, *args, **kwargs):
        raise LookupError(resource)

    def no_download(*args, **kwargs):  # pragma: no cover - reaching it fails the test
        raise AssertionError("readability tried to download NLTK data")

    monkeypatch.setattr(nltk.data, "find", missing)
    monkeypatch.setattr(nltk, "download", no_download)
    backend, note = metrics.readability_backend()
    assert backend == "pyphen" and "cmudict" in note
