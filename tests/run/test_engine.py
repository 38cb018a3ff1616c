"""The engine against the fake provider: plan, derivations, resume, reproducibility, instruct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fountain import generate
from fountain.generation.requests import resolve_mode
from fountain.providers.base import ProviderConfig
from fountain.providers.fake import FakeProvider
from fountain.run.export import record_validator
from fountain.spec.load import load_spec
from run_helpers import SETUP, make_spec, options, records


@pytest.fixture
def spec(tmp_path):
    return load_spec(make_spec(tmp_path))


def test_plan_counts_are_exact(spec, tmp_path):
    provider = FakeProvider()
    result = generate(spec, options(tmp_path / "out"), provider=provider)
    seeds = records(tmp_path / "out" / "seeds.jsonl")
    derivations = records(tmp_path / "out" / "derivations.jsonl")
    assert len(seeds) == 2 * 2  # seed directions x seeds_per_direction
    # every prefix 1..n of every seed x 2 derivational directions x 1
    expected = sum(len(s["messages"]) // 2 for s in seeds) * 2
    assert len(derivations) == expected
    assert result.counts["accepted"] == {"seed": 4, "derivation": expected}
    assert result.counts["derivations_planned"] == expected
    assert len(provider.requests) == 4 + expected  # json mode: one request each, no retries
    assert result.dataset_records == 4 + expected
    assert records(tmp_path / "out" / "rejects.jsonl") == []
    directions = sorted({s["metadata"]["direction"] for s in seeds})
    assert directions == ["concretize", "general"]


def test_derivation_is_prefix_plus_continuation(spec, tmp_path):
    generate(spec, options(tmp_path / "out"), provider=FakeProvider())
    seeds = {r["metadata"]["id"]: r for r in records(tmp_path / "out" / "seeds.jsonl")}
    derivations = records(tmp_path / "out" / "derivations.jsonl")
    assert derivations
    prefixes = set()
    for record in derivations:
        meta = record["metadata"]
        parent = seeds[meta["parent_id"]]
        k = meta["prefix_turns"]
        prefixes.add(k)
        assert record["messages"][: 2 * k] == parent["messages"][: 2 * k]
        assert len(record["messages"]) > 2 * k  # a continuation follows
        assert record["messages"][2 * k :] != parent["messages"][2 * k :]
        assert meta["kind"] == "derivation" and meta["direction"] in ("in-depth", "breadth")
    assert min(prefixes) == 1


def test_records_carry_provenance_and_validate(spec, tmp_path):
    generate(spec, options(tmp_path / "out"), provider=FakeProvider())
    validator = record_validator()
    for record in records(tmp_path / "out" / "dataset.jsonl"):
        assert not list(validator.iter_errors(record))
        meta = record["metadata"]
        assert meta["spec_fingerprint"] == spec.fingerprint()
        assert meta["provider"] == "fake" and meta["prompt_hash"]
        assert meta["usage"]["completion_tokens"] > 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["spec"]["fingerprint"] == spec.fingerprint()
    assert manifest["counts"]["accepted"]["seed"] == 4


def test_prompts_reach_the_provider(spec, tmp_path):
    provider = FakeProvider()
    generate(spec, options(tmp_path / "out", seed=5), provider=provider)
    first = provider.requests[0]
    assert first.messages[-1].role == "user"
    assert "Write a conversation between COUNSELEE and COUNSELOR" in first.messages[-1].content
    conv = first.schema["properties"]["conversations"]
    assert (conv["minItems"], conv["maxItems"]) == (1, 3)
    assert first.seed == 5 and first.purpose == "seed"
    assert {r.sample_index for r in provider.requests if r.purpose == "seed"} == {0, 1}
    derivation = next(r for r in provider.requests if r.purpose == "derivation")
    assert 'Continue: {"conversations"' in derivation.messages[-1].content


def test_resume_skips_finished_tasks(spec, tmp_path):
    out = tmp_path / "out"
    first = generate(spec, options(out, no_cache=True), provider=FakeProvider())
    dataset = (out / "dataset.jsonl").read_bytes()
    again = FakeProvider()
    second = generate(spec, options(out, no_cache=True), provider=again)
    assert again.requests == []  # everything was done
    assert (out / "dataset.jsonl").read_bytes() == dataset
    assert second.resumed and second.counts == first.counts
    # lose two derivations and a seed: exactly those (and the lost seed's derivations, which
    # are already done) are asked again
    lines = (out / "derivations.jsonl").read_text().splitlines()
    (out / "derivations.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    seed_lines = (out / "seeds.jsonl").read_text().splitlines()
    (out / "seeds.jsonl").write_text("\n".join(seed_lines[1:]) + "\n")
    third = FakeProvider()
    generate(spec, options(out, no_cache=True), provider=third)
    assert [r.purpose for r in third.requests].count("seed") == 1
    assert [r.purpose for r in third.requests].count("derivation") == 2
    assert (out / "dataset.jsonl").read_bytes() == dataset


def test_torn_last_line_is_dropped_and_redone(spec, tmp_path):
    out = tmp_path / "out"
    generate(spec, options(out), provider=FakeProvider())
    dataset = (out / "dataset.jsonl").read_bytes()
    lines = (out / "derivations.jsonl").read_text().splitlines()
    (out / "derivations.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    provider = FakeProvider()
    result = generate(spec, options(out, no_cache=True), provider=provider)
    assert any("torn" in w for w in result.warnings)
    assert len(provider.requests) == 1
    assert (out / "dataset.jsonl").read_bytes() == dataset


def test_seed_makes_runs_reproducible(spec, tmp_path):
    for name in ("a", "b"):
        generate(spec, options(tmp_path / name, seed=42, concurrency=3), provider=FakeProvider())
    for file in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl", "dataset.jsonl"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    generate(spec, options(tmp_path / "c", seed=43), provider=FakeProvider())
    assert (tmp_path / "a" / "dataset.jsonl").read_bytes() != (tmp_path / "c" / "dataset.jsonl").read_bytes()


def test_ids_are_stable_across_runs(spec, tmp_path):
    generate(spec, options(tmp_path / "a", seed=1), provider=FakeProvider())
    generate(spec, options(tmp_path / "b", seed=2), provider=FakeProvider())
    ids_a = [r["metadata"]["id"] for r in records(tmp_path / "a" / "seeds.jsonl")]
    ids_b = [r["metadata"]["id"] for r in records(tmp_path / "b" / "seeds.jsonl")]
    assert ids_a == ids_b and len(set(ids_a)) == 4


def test_instruct_mode(tmp_path):
    setup = SETUP.replace("category: marriage counsel", "category: marriage counsel\ntype: instruct")
    spec = load_spec(make_spec(tmp_path, setup))
    provider = FakeProvider()
    result = generate(spec, options(tmp_path / "out"), provider=provider)
    seeds = records(tmp_path / "out" / "seeds.jsonl")
    derivations = records(tmp_path / "out" / "derivations.jsonl")
    assert len(seeds) == 4
    assert len(derivations) == 4 * 2  # no prefixes: directions x derivations_per_direction per seed
    for record in seeds + derivations:
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert record["metadata"]["type"] == "instruct"
    assert {r["metadata"]["prefix_turns"] for r in derivations} == {0}
    assert set(provider.requests[0].schema["properties"]) == {"conversation"}
    # the derivation prompt shows the seed pair as its example
    derivation = next(r for r in provider.requests if r.purpose == "derivation")
    assert '{"conversation": {"user":' in derivation.messages[-1].content
    assert result.counts["accepted"] == {"seed": 4, "derivation": 8}


def test_turns_mode_with_fake(spec, tmp_path):
    provider = FakeProvider()
    result = generate(spec, options(tmp_path / "out", mode="turns", max_turns=2), provider=provider)
    assert result.mode == "turns"
    assert all(r.schema is None for r in provider.requests)
    purposes = {r.purpose for r in provider.requests}
    assert purposes == {"seed:user", "seed:assistant", "derivation:user", "derivation:assistant"}
    for record in records(tmp_path / "out" / "seeds.jsonl"):
        assert 1 <= len(record["messages"]) // 2 <= 2
    # the user side sees the other side's lines as "user" messages (role play)
    later = [r for r in provider.requests if r.purpose == "seed:user" and len(r.messages) > 2]
    assert later and later[0].messages[2].role == "assistant"
    assert "You are the counselee" in later[0].messages[0].content


def test_personas_multiply_and_rotate(tmp_path):
    setup = SETUP + "personas: [a retired teacher, a young nurse]\n"
    spec = load_spec(make_spec(tmp_path, setup))
    generate(spec, options(tmp_path / "out", derivations_per_direction=0), provider=FakeProvider())
    seeds = records(tmp_path / "out" / "seeds.jsonl")
    assert len(seeds) == 2 * 2 * 2
    by_direction = {}
    for record in seeds:
        by_direction.setdefault(record["metadata"]["direction"], []).append(record["metadata"]["persona"])
    for personas in by_direction.values():
        assert sorted(personas) == ["a retired teacher", "a retired teacher", "a young nurse", "a young nurse"]


def test_target_stops_early(spec, tmp_path):
    provider = FakeProvider()
    result = generate(spec, options(tmp_path / "out", target=3, concurrency=1), provider=provider)
    assert result.dataset_records == 3
    assert len(provider.requests) == 3


def test_janus_format_export(spec, tmp_path):
    result = generate(spec, options(tmp_path / "out", format="janus"), provider=FakeProvider())
    assert result.dataset_path.name == "outputs.json"
    data = json.loads(result.dataset_path.read_text())
    assert len(data) == result.dataset_records
    assert set(data[0]) == {"conversations", "type", "category", "model"}


def test_changing_the_format_replaces_the_earlier_dataset_file(spec, tmp_path):
    out = tmp_path / "out"
    first = generate(spec, options(out), provider=FakeProvider())
    assert first.dataset_path.name == "dataset.jsonl"
    first_bytes = first.dataset_path.read_bytes()
    (out / "notes.jsonl").write_text("mine\n")  # not fountain's: untouched
    provider = FakeProvider()
    second = generate(spec, options(out, format="janus"), provider=provider)
    assert provider.requests == []  # all from the cache
    assert second.dataset_path.name == "outputs.json" and not (out / "dataset.jsonl").exists()
    from fountain.run.status import collect_status

    status = collect_status(out)
    assert (status["dataset_file"], status["dataset_records"]) == ("outputs.json", second.dataset_records)
    assert any("removed dataset.jsonl" in w for w in second.warnings)
    assert (out / "notes.jsonl").read_text() == "mine\n"
    third = generate(spec, options(out), provider=FakeProvider())
    assert third.dataset_path.read_bytes() == first_bytes  # rebuilt byte for byte
    assert not (out / "outputs.json").exists()


def test_resolve_mode(spec, tmp_path):
    assert resolve_mode(spec, "local") == "turns"
    assert resolve_mode(spec, "openai") == "json"
    assert resolve_mode(spec, "local", "json") == "json"


JANUS = Path("/work/shared/corpus/janus")


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not present")
@pytest.mark.parametrize(
    "name", ["coding_assist", "coding_assist_gpt", "marriage_counsel", "marriage_counsel_instruct"]
)
def test_janus_folders_replay_unmodified(name, tmp_path):
    folder = JANUS / name
    spec = load_spec(folder)
    assert spec.template_style == "legacy"
    assert resolve_mode(spec, "local") == "json"  # legacy JSON prompts are used as written
    provider = FakeProvider(ProviderConfig(provider="fake", replay=str(folder / "outputs.json")))
    result = generate(spec, options(tmp_path / "out", max_prefix_turns=2), provider=provider)
    assert result.counts["accepted"]["seed"] == len(spec.seed_directions)
    assert result.counts["accepted"]["derivation"] > 0
    dataset = records(result.dataset_path)
    # Replayed answers repeat: Gen's dedup keeps one of each (as `fountain run` does).
    assert len(dataset) == result.dataset_records >= len(spec.seed_directions)
    validator = record_validator()
    recorded = json.loads((folder / "outputs.json").read_text())
    first = recorded[0]["conversations"]
    for record in dataset:
        assert not list(validator.iter_errors(record))
        assert record["metadata"]["category"] == recorded[0]["category"]
    # the first seed is the first recorded output, turn for turn
    assert dataset[0]["messages"][0]["content"] == first[0]["user"]
    if name == "marriage_counsel_instruct":
        assert {r["metadata"]["type"] for r in dataset} == {"instruct"}
        # the legacy instruct prompt got its 7 slots in the original order
        derivation = next(r for r in provider.requests if r.purpose == "derivation")
        assert derivation.messages[-1].content.count("------------------------------") == 2
