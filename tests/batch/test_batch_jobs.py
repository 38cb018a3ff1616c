"""The batch job ledger (batches.jsonl) and the splitting of requests over jobs."""

from __future__ import annotations

import pytest

from fountain.batch.jobs import BatchLimits, Ledger, split
from fountain.errors import OutputError


def test_ledger_reads_back_intents_ids_and_collections_and_ignores_a_torn_line(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append({"event": "intent", "job": "a", "provider": "openai", "keys": ["k1", "k2"], "estimate_usd": 0.5})
    ledger.append({"event": "created", "job": "a", "remote_id": "batch_1"})
    ledger.append({"event": "intent", "job": "b", "provider": "openai", "keys": ["k3"]})
    ledger.append({"event": "collected", "job": "a", "failed": {"k2": "expired"}, "cost_usd": 0.25})
    with open(tmp_path / "batches.jsonl", "a") as handle:
        handle.write('{"event": "created", "job": "b", "remo')  # killed in the middle of a write
    again = Ledger(tmp_path)
    assert again.jobs["a"].remote_id == "batch_1" and again.jobs["a"].state == "collected"
    assert again.jobs["b"].remote_id is None  # the torn line is not a job id
    assert again.in_flight() == {"k3"}
    assert again.failures() == {"k2": "expired"}
    assert again.spent_usd() == 0.25
    assert again.submissions == {"k1": 1, "k2": 1, "k3": 1}
    assert again.summary()["states"] == {"collected": 1, "intent": 1}


def test_an_abandoned_intent_frees_its_requests_for_another_job(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append({"event": "intent", "job": "a", "provider": "gemini", "keys": ["k1"]})
    ledger.append({"event": "abandoned", "job": "a"})
    assert Ledger(tmp_path).submissions == {"k1": 0}
    assert Ledger(tmp_path).in_flight() == set()


def test_a_later_answer_clears_an_earlier_failure(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append({"event": "intent", "job": "a", "provider": "openai", "keys": ["k1"]})
    ledger.append({"event": "collected", "job": "a", "failed": {"k1": "expired"}})
    ledger.append({"event": "intent", "job": "b", "provider": "openai", "keys": ["k1"]})
    ledger.append({"event": "collected", "job": "b", "failed": {}})
    assert Ledger(tmp_path).failures() == {}


def test_split_respects_request_and_byte_limits():
    lines = [(f"k{i}", b"x" * 10) for i in range(7)]
    assert [len(job) for job in split(lines, BatchLimits(3, 10**6))] == [3, 3, 1]
    assert [len(job) for job in split(lines, BatchLimits(100, 25))] == [2, 2, 2, 1]
    with pytest.raises(OutputError, match="more than a job may hold"):
        split([("k", b"x" * 30)], BatchLimits(100, 25))
