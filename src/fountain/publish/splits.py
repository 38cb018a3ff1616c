"""Train/test splits that do not leak: a seed and its derivations (which repeat the seed's first
turns) always land in the same split, and a train record that is a near-duplicate of a test
record (MinHash over word shingles, as ``fountain.raters.dedup`` measures it) is dropped from
train."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fountain.raters.dedup import DedupSettings, shingles

DEFAULT_TEST_SIZE = 0.1
DEFAULT_THRESHOLD = 0.8  # Jaccard of word shingles at which a train record counts as a copy


@dataclass
class Split:
    """Indices into the records: ``train`` and ``test``; ``dropped`` left train as near-copies
    of a test record (index -> the test record's index)."""

    train: list[int]
    test: list[int]
    dropped: dict[int, int] = field(default_factory=dict)
    families: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "train": len(self.train),
            "test": len(self.test),
            "families": self.families,
            "dropped_near_duplicates": len(self.dropped),
        }


def record_text(record: dict[str, Any]) -> str:
    """The words a split compares: every user and assistant message (not the system message)."""
    messages = record.get("messages") or record.get("conversations") or []
    parts = []
    for message in messages:
        role = message.get("role") or message.get("from")
        if role not in ("system",):
            parts.append(str(message.get("content") or message.get("value") or ""))
    return "\n".join(parts)


def family_of(record: dict[str, Any], index: int) -> str:
    """The seed a record descends from (its own id for a seed)."""
    meta = record.get("metadata") or {}
    return str(meta.get("parent_id") or meta.get("id") or f"#{index}")


def wanted_in_test(total: int, test_size: float) -> int:
    """How many records ``test_size`` asks for: a fraction in (0, 1), else a count."""
    if total < 2 or test_size <= 0:
        return 0
    wanted = round(total * test_size) if test_size < 1 else int(test_size)
    return min(max(wanted, 1), total - 1)


def split_records(
    records: Sequence[dict[str, Any]],
    test_size: float = DEFAULT_TEST_SIZE,
    *,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
) -> Split:
    """Split ``records`` by family into train and test (about ``test_size`` of the records in
    test), then drop from train every near-copy of a test record."""
    families: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        families[family_of(record, index)].append(index)
    order = sorted(families)
    random.Random(seed).shuffle(order)
    wanted = wanted_in_test(len(records), test_size)
    test: list[int] = []
    for name in order:
        if len(test) >= wanted:
            break
        test.extend(families[name])
    chosen = set(test)
    train = [i for i in range(len(records)) if i not in chosen]
    if len(train) == 0 and len(test) > 1:  # one family holds everything: split it after all
        train, test = test[wanted:], test[:wanted]
    dropped = near_copies(records, sorted(test), train, threshold) if test and train else {}
    return Split([i for i in train if i not in dropped], sorted(test), dropped, len(families))


def near_copies(
    records: Sequence[dict[str, Any]], test: Sequence[int], train: Sequence[int], threshold: float
) -> dict[int, int]:
    """Train indices whose shingle Jaccard with some test record is at least ``threshold``."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        from fountain.errors import MissingDependencyError

        raise MissingDependencyError(
            "the near-duplicate check of the splits needs the 'datasketch' package",
            hint="pip install 'fountain[publish]', or publish without a test split (--test-size 0)",
        ) from None
    settings = DedupSettings()
    sets = {i: shingles(record_text(records[i]), settings.shingle_size) for i in (*test, *train)}
    lsh = MinHashLSH(threshold=min(max(threshold - 0.1, 0.05), 0.9), num_perm=settings.num_perm)

    def minhash(i: int) -> Any:
        m = MinHash(num_perm=settings.num_perm, seed=settings.minhash_seed)
        m.update_batch([s.encode("utf-8") for s in sets[i]])
        return m

    for i in test:
        if sets[i]:
            lsh.insert(str(i), minhash(i))
    found: dict[int, int] = {}
    for i in train:
        if not sets[i]:
            continue
        for key in lsh.query(minhash(i)):
            j = int(key)
            if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= threshold:
                found[i] = j
                break
    return found
