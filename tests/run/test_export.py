"""Dataset writers: messages, ShareGPT, Janus outputs.json; the record schema."""

from __future__ import annotations

import json

import pytest

from fountain.errors import OutputError
from fountain.run.export import export_dataset, record_validator
from fountain.types import Provenance, Sample, Turn, Usage


def _sample(i=0, kind="seed", system=None):
    prov = Provenance(
        kind=kind,
        direction="general",
        category="marriage counsel",
        parent_id=None if kind == "seed" else "s-1",
        prefix_turns=0 if kind == "seed" else 1,
        provider="fake",
        model="fake",
        prompt_hash="abc",
        usage=Usage(10, 20),
        spec_fingerprint="f" * 64,
    )
    return Sample(
        f"{kind[0]}-{i}",
        (
            Turn("Hello, I need help.", "Of course. What happened?"),
            Turn("We argue a lot.", "Let us find out when it starts."),
        ),
        prov,
        system,
    )


def test_messages_records_validate_against_the_schema(tmp_path):
    path = export_dataset(
        [_sample(0), _sample(1, "derivation")], tmp_path, "messages", system_message="You are a marriage counselor."
    )
    assert path.name == "dataset.jsonl"
    validator = record_validator()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["messages"][0] == {"role": "system", "content": "You are a marriage counselor."}
        assert [m["role"] for m in record["messages"][1:]] == ["user", "assistant"] * 2
    assert records[1]["metadata"]["kind"] == "derivation" and records[1]["metadata"]["parent_id"] == "s-1"


def test_schema_rejects_bad_records():
    validator = record_validator()
    good = _sample().to_record()
    bad_role = json.loads(json.dumps(good))
    bad_role["messages"][0]["role"] = "human"
    empty = json.loads(json.dumps(good))
    empty["messages"][1]["content"] = "  "
    no_meta = {"messages": good["messages"]}
    for record in (bad_role, empty, no_meta):
        assert list(validator.iter_errors(record))


def test_sharegpt(tmp_path):
    path = export_dataset([_sample()], tmp_path, "sharegpt", system_message="Be kind.")
    record = json.loads(path.read_text())
    assert [m["from"] for m in record["conversations"]] == ["system", "human", "gpt", "human", "gpt"]
    assert record["conversations"][1]["value"] == "Hello, I need help."
    assert record["metadata"]["id"] == "s-0"


def test_janus_outputs_json(tmp_path):
    path = export_dataset([_sample(), _sample(1, "derivation")], tmp_path, "janus")
    assert path.name == "outputs.json"
    data = json.loads(path.read_text())
    assert data[0] == {
        "conversations": [
            {"user": "Hello, I need help.", "assistant": "Of course. What happened?"},
            {"user": "We argue a lot.", "assistant": "Let us find out when it starts."},
        ],
        "type": "conversation",
        "category": "marriage counsel",
        "model": "fake",
    }
    assert len(data) == 2


def test_sample_system_is_kept(tmp_path):
    path = export_dataset([_sample(system="Own system.")], tmp_path, "messages", system_message="Other.")
    assert json.loads(path.read_text())["messages"][0]["content"] == "Own system."


def test_unknown_format(tmp_path):
    with pytest.raises(OutputError):
        export_dataset([], tmp_path, "csv")


def test_empty_dataset_is_an_empty_file(tmp_path):
    assert export_dataset([], tmp_path).read_text() == ""


@pytest.mark.parametrize("system_message", [None, "You are a patient counselor.", 'Ünïcode, "quotes",\nand a \\ line.'])
def test_the_journals_lines_export_as_the_samples_would(tmp_path, system_message):
    # A run's samples (ResultSamples) export by copying their canonical journal lines: the bytes
    # must be what the same samples give one by one, a system message added where one is missing.
    from fountain.frameworks import run_framework
    from fountain.providers.fake import FakeProvider
    from fountain.run.samples import ResultSamples
    from fountain.spec.load import load_spec
    from framework_helpers import SETUP, make_spec, options

    setup = SETUP.replace("{seeds}", "3").replace("{derivations}", "1") + "raters:\n  dedup:\n    enabled: false\n"
    result = run_framework(
        load_spec(make_spec(tmp_path, setup=setup)), options(tmp_path / "out"), provider=FakeProvider()
    )
    samples = result.samples
    assert isinstance(samples, ResultSamples) and len(samples) > 6
    with_system = sum(1 for s in samples if s.system)
    fast = export_dataset(samples, tmp_path / "fast", system_message=system_message)
    slow = export_dataset(list(samples), tmp_path / "slow", system_message=system_message)
    assert fast.read_bytes() == slow.read_bytes()
    lines = [json.loads(line) for line in fast.read_text(encoding="utf-8").splitlines()]
    has_system = sum(1 for r in lines if r["messages"][0]["role"] == "system")
    assert has_system == (len(lines) if system_message else with_system)
    assert 0 <= with_system < len(lines)  # some samples have no system message of their own


def test_journal_lines_with_their_own_system_message_are_copied_as_they_are(tmp_path):
    from array import array

    from fountain.run.journal import dumps_record
    from fountain.run.samples import ResultSamples

    samples = [_sample(0, system="Own system."), _sample(1), _sample(2, kind="derivation", system="Own system.")]
    journal = tmp_path / "seeds.jsonl"
    lines = [(dumps_record(s.to_record()) + "\n").encode("utf-8") for s in samples]
    journal.write_bytes(b"".join(lines))
    offsets = array("q", [0])
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    stream = ResultSamples([(journal, offsets)])
    fast = export_dataset(stream, tmp_path / "fast", system_message="Added.")
    slow = export_dataset(samples, tmp_path / "slow", system_message="Added.")
    assert fast.read_bytes() == slow.read_bytes()
    systems = [json.loads(line)["messages"][0]["content"] for line in fast.read_text(encoding="utf-8").splitlines()]
    assert systems == ["Own system.", "Added.", "Own system."]
