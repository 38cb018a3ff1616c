"""fountain publish --to hf://OWNER/NAME against a loopback mock of the Hub: the real
huggingface_hub client, real HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from spec_helpers import run_cli

pytest.importorskip("huggingface_hub")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

FIXTURE = Path(__file__).parent.parent / "fixtures" / "report" / "spec"
TOKEN = "hf_test_0123456789abcdef"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from fountain.testing.hub_mock import start_hub_mock

    mock = start_hub_mock(token=TOKEN, user="alice")
    monkeypatch.setenv("HF_ENDPOINT", mock.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield mock
    mock.stop()


@pytest.fixture
def output(tmp_path, monkeypatch):
    spec = tmp_path / "spec"
    shutil.copytree(FIXTURE, spec)
    monkeypatch.chdir(tmp_path)
    return spec / "output"


def test_push_creates_a_private_dataset_repo_with_one_commit(hub, output, capsys):
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--private", "--no-report"], capsys)
    assert code == 0, text
    repo = hub.state.repos[("dataset", "alice/garden")]
    assert repo.private is True
    assert set(repo.files) == {"README.md", "data/train.jsonl", "data/test.jsonl", "dataset_info.json", "axolotl.yaml"}
    assert len(repo.commits) == 1
    card = repo.files["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train.jsonl"
    assert 'load_dataset("alice/garden")' in card
    assert yaml.safe_load(repo.files["axolotl.yaml"])["datasets"][0]["path"] == "alice/garden"
    assert repo.commits[0]["oid"] in text


def test_the_token_never_appears_in_output_card_or_files(hub, output, capsys):
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)
    assert code == 0
    assert TOKEN not in text
    repo = hub.state.repos[("dataset", "alice/garden")]
    assert all(TOKEN.encode() not in content for content in repo.files.values())


def test_publishing_again_updates_the_repo_with_a_new_commit(hub, output, capsys):
    assert run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)[0] == 0
    assert (
        run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report", "--test-size", "0.5"], capsys)[0]
        == 0
    )
    repo = hub.state.repos[("dataset", "alice/garden")]
    assert len(repo.commits) == 2
    assert "data/test.jsonl" in repo.commits[1]["files"]


def test_the_pushed_files_load_with_datasets(hub, output, tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    assert run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)[0] == 0
    copy = tmp_path / "downloaded"
    for name, content in hub.state.repos[("dataset", "alice/garden")].files.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(content)
    loaded = datasets.load_dataset(str(copy), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "test"}


def test_a_wrong_token_is_a_clear_error_without_the_token(hub, output, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_value")
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)
    assert code == 1
    assert "401" in text and "HF_TOKEN" in text and "Traceback" not in text
    assert "hf_wrong_token_value" not in text
    assert ("dataset", "alice/garden") not in hub.state.repos


def test_a_namespace_the_token_cannot_write_is_a_clear_error(hub, output, capsys):
    code, text = run_cli(["publish", str(output), "--to", "hf://bob/garden", "--no-report"], capsys)
    assert code == 1 and "403" in text and "Traceback" not in text


def test_no_token_says_how_to_give_one(hub, output, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)
    assert code == 1 and "export HF_TOKEN" in text


def test_a_malformed_repo_id_is_refused_before_anything_is_sent(hub, output, capsys):
    code, text = run_cli(["publish", str(output), "--to", "hf://just-a-name", "--no-report"], capsys)
    assert code == 1 and "OWNER/NAME" in text
    assert hub.state.requests == []


def test_an_unreachable_hub_is_a_clear_error(output, capsys, monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)
    assert code == 1 and "Traceback" not in text
    assert "no answer" in text and "HF_ENDPOINT" in text


def test_private_makes_an_existing_public_repo_private(hub, output, capsys):
    assert run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report"], capsys)[0] == 0
    assert hub.state.repos[("dataset", "alice/garden")].private is False
    code, text = run_cli(["publish", str(output), "--to", "hf://alice/garden", "--no-report", "--private"], capsys)
    assert code == 0, text
    assert hub.state.repos[("dataset", "alice/garden")].private is True
    assert ("PUT", "/api/datasets/alice/garden/settings") in hub.state.requests
