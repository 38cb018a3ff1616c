"""Splits that do not leak: families stay together, near-copies of test records leave train."""

from __future__ import annotations

from fountain.publish.splits import split_records, wanted_in_test


def _record(rid: str, text: str, parent: str = "") -> dict:
    return {
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok " + text}],
        "metadata": {"id": rid, "kind": "derivation" if parent else "seed", "parent_id": parent},
    }


def _words(n: int, offset: int) -> str:
    return " ".join(f"w{offset + i}" for i in range(n))


def test_a_seed_and_its_derivations_land_in_the_same_split():
    records = []
    for s in range(10):
        records.append(_record(f"s{s}", _words(30, s * 100)))
        records += [_record(f"d{s}-{k}", _words(30, s * 100 + 50 + k * 7), parent=f"s{s}") for k in range(2)]
    split = split_records(records, 0.2, seed=3)
    test_families = {records[i]["metadata"]["parent_id"] or records[i]["metadata"]["id"] for i in split.test}
    for i in split.train:
        assert (records[i]["metadata"]["parent_id"] or records[i]["metadata"]["id"]) not in test_families
    assert len(split.test) >= 6 and len(split.train) + len(split.test) == 30


def test_near_copies_of_a_test_record_are_dropped_from_train():
    base = _words(60, 0)
    records = [_record(f"s{i}", _words(60, 1000 * (i + 1))) for i in range(9)]
    records.append(_record("orig", base))
    records.append(_record("copy", base + " w999999"))  # another family, nearly the same words
    split = split_records(records, 1, seed=0)
    # whichever of the pair went to test, the other must not stay in train
    pair = {9, 10}
    if pair & set(split.test):
        assert not (pair & set(split.train))
        assert split.dropped or pair <= set(split.test)
    assert set(split.train).isdisjoint(split.test)


def test_near_copy_is_found_when_its_twin_is_in_test():
    base = _words(60, 0)
    records = [_record("orig", base), _record("copy", base + " extra"), _record("other", _words(60, 5000))]
    for seed in range(20):
        split = split_records(records, 1, seed=seed)
        if split.test == [0]:
            assert split.dropped == {1: 0} and split.train == [2]
            return
    raise AssertionError("no seed put the original alone in test")


def test_test_size_is_a_share_below_one_and_a_count_above():
    assert wanted_in_test(100, 0.1) == 10
    assert wanted_in_test(100, 7) == 7
    assert wanted_in_test(100, 0) == 0
    assert wanted_in_test(1, 0.5) == 0
    assert wanted_in_test(3, 0.01) == 1
    assert wanted_in_test(3, 50) == 2
