"""The engine keeps an index, not the samples: parents read back from the journals, streamed
rewrite and export, lazy RunResult.samples."""

from __future__ import annotations

import json

import pytest

from fountain import generate
from fountain.errors import OutputError
from fountain.providers.fake import FakeProvider
from fountain.run.journal import RecordReader
from fountain.run.samples import SampleIndex
from fountain.spec.load import load_spec
from run_helpers import make_spec, options, records, run_round


@pytest.fixture
def spec(tmp_path):
    return load_spec(make_spec(tmp_path))


def test_parents_read_back_from_the_journal_give_the_same_dataset(spec, tmp_path, monkeypatch):
    reference = generate(spec, options(tmp_path / "ref"), provider=FakeProvider())
    reads = []
    real = RecordReader.record

    def spy(self, source, offset, length):
        reads.append(source)
        return real(self, source, offset, length)

    monkeypatch.setattr(RecordReader, "record", spy)
    monkeypatch.setattr(SampleIndex, "RECENT", 1)  # keep (almost) nothing in memory
    result = generate(spec, options(tmp_path / "small"), provider=FakeProvider())
    assert reads.count(0) > 1, "derivation parents were read back from seeds.jsonl"
    for name in ("dataset.jsonl", "seeds.jsonl", "derivations.jsonl"):
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert result.dataset_records == reference.dataset_records > 4


def test_a_rounds_result_samples_are_read_on_demand(spec, tmp_path):
    out = tmp_path / "out"
    result = run_round(spec, options(out), FakeProvider())
    journals = records(out / "seeds.jsonl") + records(out / "derivations.jsonl")
    ids = [d["metadata"]["id"] for d in journals]
    assert len(result.samples) == result.dataset_records == len(ids)
    assert [s.id for s in result.samples] == ids
    assert result.samples[0].id == ids[0] and result.samples[-1].id == ids[-1]
    assert [s.id for s in result.samples[1:3]] == ids[1:3]
    assert result.samples[-1].to_record() == journals[-1]
    with pytest.raises(IndexError):
        result.samples[len(ids)]
    # Another run in the folder rewrites the journals: the old result refuses to read them.
    generate(spec, options(out), provider=FakeProvider())
    with pytest.raises(OutputError):
        list(result.samples)


def test_a_resumed_journal_line_is_rewritten_in_canonical_form(spec, tmp_path):
    out = tmp_path / "out"
    generate(spec, options(out), provider=FakeProvider())
    seeds = (out / "seeds.jsonl").read_text(encoding="utf-8").splitlines()
    dataset = (out / "dataset.jsonl").read_bytes()
    record = json.loads(seeds[0])
    meta = record.pop("metadata")
    edited = {"metadata": dict(reversed(list(meta.items())), note="not a field"), **record}
    (out / "seeds.jsonl").write_text("\n".join([json.dumps(edited)] + seeds[1:]) + "\n", encoding="utf-8")
    provider = FakeProvider()
    generate(spec, options(out), provider=provider)
    assert provider.requests == []  # nothing left to do
    assert (out / "seeds.jsonl").read_text(encoding="utf-8").splitlines() == seeds
    assert (out / "dataset.jsonl").read_bytes() == dataset
