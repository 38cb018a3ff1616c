"""``fountain report``: measure a generated dataset — counts, structure, diversity, grounding,
readability, similarity to real data, privacy ledger — in the terminal, as JSON or as HTML.

Modules: ``load`` (reading output folders and dataset files), ``counts`` (figures from the
manifest and journals), ``metrics`` (pure text metrics), ``vectors`` (pure embedding metrics),
``grounding`` (diagram coverage, role consistency), ``build`` (assembling the figures),
``terminal`` (rich tables), ``html`` (self-contained page).
Definitions and how to read each figure: ``docs/report.md``.
"""

from __future__ import annotations

from fountain.report.build import Report, build_report
from fountain.report.grounding import coverage, grounding_items, role_consistency
from fountain.report.load import Dataset, Item, ReportError, load_dataset
from fountain.report.metrics import (
    describe,
    distinct_n,
    ks_statistic,
    minhash_duplicate_rate,
    self_bleu,
    sentence_bleu,
    tokenize,
)
from fountain.report.vectors import (
    frechet_distance,
    knn_precision_recall,
    mean_pairwise_distance,
    memorisation_rate,
    nearest_similarity,
)

__all__ = [
    "Dataset",
    "Item",
    "Report",
    "ReportError",
    "build_report",
    "coverage",
    "describe",
    "distinct_n",
    "frechet_distance",
    "grounding_items",
    "knn_precision_recall",
    "ks_statistic",
    "load_dataset",
    "mean_pairwise_distance",
    "memorisation_rate",
    "minhash_duplicate_rate",
    "nearest_similarity",
    "role_consistency",
    "self_bleu",
    "sentence_bleu",
    "tokenize",
]
