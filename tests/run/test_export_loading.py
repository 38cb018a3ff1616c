"""Output that loads everywhere: stable record types, declared features, prefix-loss weights, and
``datasets`` reading big and combined outputs without hand-written Features."""

from __future__ import annotations

import json
import time

import pytest

from fountain.resources import load_schema
from fountain.run.export import export_dataset, record_validator
from fountain.run.features import METADATA_FIELDS, OPTIONAL_METADATA, datasets_features, record_features
from fountain.types import Provenance, Sample, Turn, Usage

LONG = "We keep arguing about money and chores, and neither of us listens. " * 6


def _sample(i: int, kind: str = "seed", persona: str | None = None, turns: int = 3, prefix: int = 0) -> Sample:
    prov = Provenance(
        kind=kind,
        direction="general",
        category="marriage counsel",
        parent_id=None if kind == "seed" else f"s-{i % 7}",
        prefix_turns=prefix,
        provider="fake",
        model="fake-1",
        prompt_hash="abc",
        usage=Usage(10, 20),
        spec_fingerprint="f" * 64,
        persona=persona,
    )
    body = tuple(Turn(f"{i}-{t}: {LONG}", f"Answer {t} to {i}: {LONG}") for t in range(turns))
    return Sample(f"{kind[0]}-{i}", body, prov)


def test_absent_parent_and_persona_are_written_as_empty_strings_and_read_back_as_none():
    record = _sample(1).to_record()
    assert record["metadata"]["parent_id"] == "" and record["metadata"]["persona"] == ""
    assert not list(record_validator().iter_errors(record))
    back = Sample.from_record(record)
    assert back.provenance.parent_id is None and back.provenance.persona is None
    assert back == _sample(1)


def test_journal_lines_of_older_runs_with_nulls_still_read_back():
    record = _sample(2, "derivation", prefix=1).to_record()
    record["metadata"]["persona"] = None
    assert Sample.from_record(record).provenance.persona is None


def test_every_record_has_the_same_metadata_keys_and_types():
    records = [
        _sample(0).to_record(),
        _sample(1, "derivation", persona="a nurse", prefix=2).to_record(),
    ]
    shapes = [{k: type(v).__name__ for k, v in r["metadata"].items()} for r in records]
    assert shapes[0] == shapes[1]
    assert set(records[0]["metadata"]) == {name for name, _ in METADATA_FIELDS}


def test_declared_features_match_the_record_schema():
    schema = load_schema("sft_record.schema.json")
    declared = {name for name, _ in METADATA_FIELDS} | set(OPTIONAL_METADATA)
    assert declared == set(schema["$defs"]["metadata"]["properties"])
    features = datasets_features(weighted=True)
    assert set(features) == {"messages", "metadata"}
    assert "weight" in str(features["messages"])


def test_prefix_loss_mask_weighs_only_the_parents_turns(tmp_path):
    samples = [_sample(0), _sample(1, "derivation", prefix=2, turns=3)]
    path = export_dataset(samples, tmp_path, system_message="Be kind.", prefix_loss="mask")
    seed, derivation = (json.loads(line) for line in path.read_text().splitlines())
    assert [m.get("weight") for m in seed["messages"] if m["role"] == "assistant"] == [1, 1, 1]
    assert [m.get("weight") for m in derivation["messages"] if m["role"] == "assistant"] == [0, 0, 1]
    assert all("weight" not in m for m in derivation["messages"] if m["role"] != "assistant")
    for record in (seed, derivation):
        assert not list(record_validator().iter_errors(record))


def test_prefix_loss_mask_applies_to_messages_and_sharegpt(tmp_path):
    samples = [_sample(0), _sample(1, "derivation", prefix=1)]
    path = export_dataset(samples, tmp_path / "m", prefix_loss="mask")
    derivation = json.loads(path.read_text().splitlines()[1])
    assert [m["weight"] for m in derivation["messages"] if m["role"] == "assistant"] == [0, 1, 1]
    path = export_dataset(samples, tmp_path / "s", "sharegpt", prefix_loss="mask")
    derivation = json.loads(path.read_text().splitlines()[1])
    assert [m["weight"] for m in derivation["conversations"] if m["from"] == "gpt"] == [0, 1, 1]


def test_prefix_loss_keep_leaves_messages_unweighted(tmp_path):
    path = export_dataset([_sample(1, "derivation", prefix=2)], tmp_path)
    assert all("weight" not in m for m in json.loads(path.read_text())["messages"])


def test_unknown_prefix_loss_is_a_user_error(tmp_path):
    from fountain.errors import OutputError

    with pytest.raises(OutputError, match="prefix loss"):
        export_dataset([_sample(0)], tmp_path, prefix_loss="drop")


def _load(files, cache):
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset("json", data_files=[str(f) for f in files], split="train", cache_dir=str(cache))


def test_two_different_runs_combined_load_without_hand_written_features(tmp_path):
    # run A: seeds only, no personas; run B: derivations with personas.
    a = export_dataset([_sample(i) for i in range(20)], tmp_path / "a")
    b = export_dataset(
        [_sample(i, "derivation", persona="a retired teacher", prefix=1) for i in range(20)], tmp_path / "b"
    )
    table = _load([a, b], tmp_path / "cache")
    assert table.num_rows == 40
    assert table[0]["metadata"]["parent_id"] == "" and table[39]["metadata"]["persona"] == "a retired teacher"
    assert table.features["metadata"]["prefix_turns"].dtype == "int64"


def test_a_50_mb_output_with_seeds_first_loads_without_hand_written_features(tmp_path):
    # datasets infers types from its first block (10 MB): a run's seeds fill it (parent_id and
    # persona absent), derivations with both set follow.
    def samples():
        for i in range(9000):
            yield _sample(i)
        for i in range(22000):
            yield _sample(i, "derivation", persona=f"person {i % 5}", prefix=1 + i % 2)

    path = export_dataset(samples(), tmp_path, prefix_loss="mask")
    size = path.stat().st_size
    assert size > 50 * 1024 * 1024
    started = time.monotonic()
    table = _load([path], tmp_path / "cache")
    assert table.num_rows == 31000
    assert table[30999]["metadata"]["persona"] == "person 4"
    assert table[0]["messages"][1]["weight"] == 1
    assert time.monotonic() - started < 120


def test_card_features_parse_as_datasets_features():
    datasets = pytest.importorskip("datasets")
    for fmt in ("messages", "sharegpt"):
        for weighted in (False, True):
            features = datasets.Features._from_yaml_list(record_features(fmt, weighted=weighted))
            assert features["metadata"]["usage"]["prompt_tokens"].dtype == "int64"


def test_a_run_with_prefix_loss_mask_weighs_its_dataset_and_keeps_journals_plain(tmp_path):
    from fountain import generate
    from fountain.providers.fake import FakeProvider
    from fountain.spec.load import load_spec
    from run_helpers import make_spec, options, records

    spec = load_spec(make_spec(tmp_path))
    result = generate(spec, options(tmp_path / "out", prefix_loss="mask"), provider=FakeProvider())
    dataset = records(result.dataset_path)
    derived = [r for r in dataset if r["metadata"]["kind"] != "seed" and r["metadata"]["prefix_turns"]]
    assert derived
    for record in dataset:
        weights = [m["weight"] for m in record["messages"] if m["role"] == "assistant"]
        prefix = record["metadata"]["prefix_turns"] if record["metadata"]["kind"] != "seed" else 0
        assert weights == [0] * prefix + [1] * (len(weights) - prefix)
    journal = records(tmp_path / "out" / "derivations.jsonl")
    assert all("weight" not in m for r in journal for m in r["messages"])
