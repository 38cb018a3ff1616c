"""fountain publish --to DIR: a folder datasets loads as it is, with both splits and a card whose
YAML metadata parses and says where the data came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from spec_helpers import run_cli

FIXTURE = Path(__file__).parent.parent / "fixtures" / "report" / "spec"


@pytest.fixture
def output(tmp_path):
    spec = tmp_path / "spec"
    shutil.copytree(FIXTURE, spec)
    return spec / "output"


def _card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_published_folder_loads_with_datasets_with_both_splits(output, tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    target = tmp_path / "published"
    code, text = run_cli(["publish", str(output), "--to", str(target), "--test-size", "0.25", "--no-embed"], capsys)
    assert code == 0, text
    loaded = datasets.load_dataset(str(target), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].num_rows + loaded["test"].num_rows == 8
    assert loaded["test"].num_rows >= 1
    # the fixture's seeds have parent_id null: published with the stable type
    assert loaded["train"].features["metadata"]["parent_id"].dtype == "string"
    row = loaded["train"][0]
    assert row["messages"][0]["role"] in ("system", "user")


def test_card_metadata_parses_and_tells_where_the_data_came_from(output, tmp_path, capsys):
    target = tmp_path / "published"
    code, text = run_cli(
        ["publish", str(output), "--to", str(target), "--no-embed", "--license", "cc-by-4.0", "--tag", "gardening"],
        capsys,
    )
    assert code == 0, text
    meta, body = _card(target)
    assert meta["license"] == "cc-by-4.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"]
    assert "gardening" in meta["tags"] and "synthetic" in meta["tags"]
    files = {f["split"]: f["path"] for f in meta["configs"][0]["data_files"]}
    assert files == {"train": "data/train.jsonl", "test": "data/test.jsonl"}
    assert {f["name"] for f in meta["dataset_info"]["features"]} == {"messages", "metadata"}
    assert "```mermaid\nerDiagram" in body
    assert "## How it was generated" in body and "## Quality" in body and "## Cost" in body
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["provider"]["model"] in body
    assert "Seed directions" in body
    # the fixture is a PE run: its ledger is on the card, with what the guarantee covers
    privacy = body.split("## Privacy", 1)[1]
    assert "ε = 3.34" in privacy and "δ = 1e-05" in privacy and "2 iteration(s)" in privacy
    assert "What the guarantee covers" in privacy
    assert "differential-privacy" in meta["tags"]


def test_a_run_without_private_evolution_has_no_privacy_section(output, tmp_path, capsys):
    manifest = json.loads((output / "manifest.json").read_text())
    manifest["privacy"] = []
    (output / "manifest.json").write_text(json.dumps(manifest))
    target = tmp_path / "published"
    code, _ = run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)
    assert code == 0
    meta, body = _card(target)
    assert "## Privacy" not in body and "differential-privacy" not in meta["tags"]


def test_llamafactory_and_axolotl_configs_point_at_the_split_files(output, tmp_path, capsys):
    target = tmp_path / "published"
    code, _ = run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)
    assert code == 0
    info = json.loads((target / "dataset_info.json").read_text())
    entries = list(info.values())
    assert {e["file_name"] for e in entries} == {"data/train.jsonl", "data/test.jsonl"}
    assert all((target / e["file_name"]).is_file() for e in entries)
    assert entries[0]["tags"]["assistant_tag"] == "assistant"
    axolotl = yaml.safe_load((target / "axolotl.yaml").read_text())
    assert axolotl["datasets"][0]["data_files"] == ["data/train.jsonl"]
    assert axolotl["datasets"][0]["type"] == "chat_template"


def test_prefix_loss_mask_at_publish_weighs_derivation_prefixes(output, tmp_path, capsys):
    target = tmp_path / "published"
    code, _ = run_cli(
        ["publish", str(output), "--to", str(target), "--no-report", "--prefix-loss", "mask", "--test-size", "0"],
        capsys,
    )
    assert code == 0
    records = [json.loads(line) for line in (target / "data" / "train.jsonl").read_text().splitlines()]
    derived = [r for r in records if r["metadata"]["kind"] != "seed" and r["metadata"]["prefix_turns"]]
    assert derived
    weights = [m["weight"] for m in derived[0]["messages"] if m["role"] == "assistant"]
    assert weights[: derived[0]["metadata"]["prefix_turns"]] == [0] * derived[0]["metadata"]["prefix_turns"]
    assert weights[-1] == 1
    meta, _ = _card(target)
    message = meta["dataset_info"]["features"][0]["list"]
    assert {"name": "weight", "dtype": "int64"} in message
    assert not (target / "data" / "test.jsonl").exists()


def test_secrets_in_the_environment_never_reach_the_card(output, tmp_path, capsys, monkeypatch):
    secret = "sk-very-secret-value-123"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    setup = output.parent / "setup.yaml"
    setup.write_text(setup.read_text() + f"# key pasted by mistake: {secret}\n")
    target = tmp_path / "published"
    code, text = run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)
    assert code == 0, text
    assert secret not in (target / "README.md").read_text()


def test_a_folder_with_foreign_files_is_refused_and_left_untouched(output, tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    code, text = run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)
    assert code == 1
    assert "did not write" in text and "Traceback" not in text
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_publishing_inside_the_output_folder_is_refused(output, capsys):
    code, text = run_cli(["publish", str(output), "--to", str(output / "pub"), "--no-report"], capsys)
    assert code == 1 and "inside the output folder" in text


def test_a_folder_without_a_dataset_is_a_clear_error(tmp_path, capsys):
    code, text = run_cli(["publish", str(tmp_path), "--to", str(tmp_path.parent / "x"), "--no-report"], capsys)
    assert code == 1 and "no dataset.jsonl" in text and "Traceback" not in text


def test_an_evaluation_of_the_output_goes_on_the_card(output, tmp_path, capsys):
    result = {
        "model": "SmolLM2-135M-Instruct (bundled GGUF)",
        "options": {"steps": 30, "batch_size": 1, "max_length": 256},
        "train_conversations": 6,
        "before": {"test": {"loss": 2.5, "perplexity": 12.18}},
        "after": {"test": {"loss": 2.25, "perplexity": 9.49}},
    }
    (output / "evaluation.json").write_text(json.dumps(result))
    target = tmp_path / "published"
    assert run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)[0] == 0
    _, body = _card(target)
    assert "## Fine-tuning check" in body and "| test | 2.5 | 2.25 | 12.2 | 9.49 |" in body


def test_a_sample_specs_fake_run_publishes_and_loads_with_both_splits(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    from fountain import generate
    from fountain.providers.fake import FakeProvider
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec

    spec_folder = tmp_path / "marriage_counsel"
    shutil.copytree(Path(__file__).parents[2] / "samples" / "marriage_counsel", spec_folder)
    spec = load_spec(spec_folder)
    options = RunOptions(output=spec_folder / "output", quiet=True, seed=1, fsync=False, seeds_per_direction=3)
    result = generate(spec, options, provider=FakeProvider())
    target = tmp_path / "published"
    code, text = run_cli(
        ["publish", str(result.output_dir), "--to", str(target), "--test-size", "0.3", "--no-embed"], capsys
    )
    assert code == 0, text
    loaded = datasets.load_dataset(str(target), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows > 0 and loaded["test"].num_rows > 0
    assert loaded["train"].num_rows + loaded["test"].num_rows == result.dataset_records
    meta, body = _card(target)
    assert meta["pretty_name"] == "marriage counsel"
    assert "COUNSELEE" in body and "| provider | fake |" in body


def test_a_sharegpt_output_publishes_and_loads(output, tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    from fountain.run.export import export_dataset
    from fountain.types import Sample

    lines = (output / "dataset.jsonl").read_text().splitlines()
    samples = [Sample.from_record(json.loads(line)) for line in lines]
    export_dataset(samples, output, "sharegpt", prefix_loss="mask")
    target = tmp_path / "published"
    code, text = run_cli(["publish", str(output), "--to", str(target), "--no-report"], capsys)
    assert code == 0, text
    loaded = datasets.load_dataset(str(target), cache_dir=str(tmp_path / "cache"))
    assert set(loaded["train"].features) == {"conversations", "metadata"}
    first = loaded["train"][0]["conversations"]
    assert {m["from"] for m in first} <= {"system", "human", "gpt"}
    info = json.loads((target / "dataset_info.json").read_text())
    assert next(iter(info.values()))["tags"]["assistant_tag"] == "gpt"


def test_a_conversation_dropped_in_the_hand_review_is_not_published(output, tmp_path, capsys):
    from fountain.run.review import append_decision

    records = [json.loads(line) for line in (output / "dataset.jsonl").read_text().splitlines() if line.strip()]
    dropped = records[0]["metadata"]["id"]
    append_decision(output, dropped, "drop")  # as fountain studio's Drop does, before any re-export
    target = tmp_path / "published"
    code, text = run_cli(["publish", str(output), "--to", str(target), "--test-size", "0", "--no-embed"], capsys)
    assert code == 0, text
    published = [json.loads(line) for line in (target / "data" / "train.jsonl").read_text().splitlines() if line]
    assert len(published) == len(records) - 1
    assert dropped not in {r["metadata"]["id"] for r in published}
