"""What a server's answer or a spec may put in front of the user: secrets are redacted, control
characters escaped, consent asked before a key leaves for a spec's own server; exit code 3 for a
run with provider_error rejects; output/ kept out of git."""

from __future__ import annotations

import json

import pytest

from fountain.cli import main
from fountain.providers.throttle import RetryPolicy
from run_helpers import SETUP
from run_helpers import make_spec as _make_spec

FAST = "raters:\n  dedup:\n    embedding_threshold: null\n"  # no embedder to load: these tests are about the CLI


def make_spec(root, setup: str = SETUP):
    return _make_spec(root, setup + FAST)


KEY = "sk-user-secret-0123456789abcdef"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"


def run_main(capsys, *argv: str):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def _openai_run(capsys, spec, out, url, *extra):
    return run_main(
        capsys,
        "run",
        "-t",
        str(spec),
        "--provider",
        "openai",
        "--model",
        "m",
        "--base-url",
        url,
        "-o",
        str(out),
        "-q",
        "--seeds-per-direction",
        "1",
        "--derivations-per-direction",
        "0",
        *extra,
    )


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after=None: 0.0)


def _error(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()


def test_a_401_that_echoes_the_key_is_redacted_everywhere(tmp_path, capsys, monkeypatch, mock_server, no_sleep):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    echo = _error(f"Incorrect API key provided: {KEY}. Authorization: Bearer {KEY}")
    mock_server.configure(raw_answers=[(401, {}, echo)] * 4)
    out = tmp_path / "out"
    code, stdout, err = _openai_run(capsys, make_spec(tmp_path), out, mock_server.openai_base_url)
    assert code == 1 and "Traceback" not in err
    assert "[redacted]" in err
    for path in [out / "manifest.json", *out.glob("*.jsonl")]:
        assert KEY not in path.read_text(), path
    assert KEY not in err + stdout


def test_escape_sequences_from_a_server_are_shown_escaped(tmp_path, capsys, monkeypatch, mock_server, no_sleep):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    mock_server.configure(raw_answers=[(401, {}, _error(HOSTILE))] * 4)
    out = tmp_path / "out"
    code, stdout, err = _openai_run(capsys, make_spec(tmp_path), out, mock_server.openai_base_url)
    assert code == 1 and "\x1b" not in err and "\x07" not in err and "\\x1b" in err
    code, stdout, err = run_main(capsys, "status", str(out))
    assert "\x1b" not in stdout + err and "\x07" not in stdout + err


def test_a_run_with_provider_error_rejects_exits_3(tmp_path, capsys, monkeypatch, mock_server, no_sleep):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    mock_server.configure(raw_answers=[(400, {}, _error("injected bad request"))])
    out = tmp_path / "out"
    code, stdout, err = _openai_run(capsys, make_spec(tmp_path), out, mock_server.openai_base_url)
    assert code == 3, err
    assert "provider_error" in err and "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] == {"provider_error": 1}
    assert manifest["counts"]["accepted"]["seed"] == 1


def _spec_with_own_server(tmp_path, url: str, key_env: str):
    return make_spec(tmp_path, SETUP + f"model:\n  provider: openai\n  base_url: {url}\n  api_key_env: {key_env}\n")


def _spec_run(capsys, spec, out, *extra):
    return run_main(
        capsys, "run", "-t", str(spec), "-o", str(out), "-q", "--seeds-per-direction", "1",
        "--derivations-per-direction", "0", *extra,
    )  # fmt: skip


def test_a_spec_cannot_send_a_foreign_token_to_its_own_server(tmp_path, capsys, monkeypatch, mock_server):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)
    spec = _spec_with_own_server(tmp_path, mock_server.openai_base_url, "GITHUB_TOKEN")
    code, stdout, err = _spec_run(capsys, spec, tmp_path / "out")
    assert code == 1 and "--allow-key-env GITHUB_TOKEN" in err
    assert mock_server.requests == []  # nothing was sent
    code, stdout, err = _spec_run(capsys, spec, tmp_path / "out2", "--allow-key-env", "GITHUB_TOKEN")
    assert code == 0, err
    assert mock_server.requests and all(r.has_key for r in mock_server.requests)


def test_the_providers_own_key_variable_needs_no_consent(tmp_path, capsys, monkeypatch, mock_server):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec = _spec_with_own_server(tmp_path, mock_server.openai_base_url, "OPENAI_API_KEY")
    code, stdout, err = _spec_run(capsys, spec, tmp_path / "out")
    assert code == 0, err


def test_output_is_added_to_a_new_gitignore(tmp_path, capsys):
    spec = make_spec(tmp_path)
    code, stdout, err = run_main(
        capsys, "run", "-t", str(spec), "--provider", "fake", "--seed", "1", "--derivations-per-direction", "0"
    )
    assert code == 0, err
    assert "/output/" in (spec / ".gitignore").read_text()
    assert ".gitignore" in err


def test_an_existing_gitignore_is_left_alone(tmp_path, capsys):
    spec = make_spec(tmp_path)
    (spec / ".gitignore").write_text("mine\n")
    code, stdout, err = run_main(
        capsys, "run", "-t", str(spec), "--provider", "fake", "--seed", "1", "--derivations-per-direction", "0", "-q"
    )
    assert code == 0 and (spec / ".gitignore").read_text() == "mine\n"


def test_no_gitignore_for_an_output_outside_the_spec_folder(tmp_path, capsys):
    spec = make_spec(tmp_path)
    code, stdout, err = run_main(
        capsys,
        "run",
        "-t",
        str(spec),
        "--provider",
        "fake",
        "--seed",
        "1",
        "--derivations-per-direction",
        "0",
        "-q",
        "-o",
        str(tmp_path / "o"),
    )
    assert code == 0 and not (spec / ".gitignore").exists()
