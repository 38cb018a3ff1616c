"""`fountain run --batch` end to end against the loopback batch APIs, through the real adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spec_helpers import make_spec, run_cli

SECRET = "sk-batch-test-NEVER-WRITE-ME"
# No embedding dedup: these tests are about the requests, not about loading the embedder.
# No embedding dedup, and no quality gates: these tests count jobs and rounds, which re-asks of the
# mock's templated answers would change (the gates are tested in tests/generation).
NO_EMBED = "raters:\n  dedup:\n    embedding_threshold: null\nquality:\n  enabled: false\n"


def batch_spec(root: Path) -> Path:
    from spec_helpers import VALID

    return make_spec(root, VALID + NO_EMBED)


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    for name in ("FOUNTAIN_PROVIDER", "FOUNTAIN_MODEL", "FOUNTAIN_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def batch_args(spec: Path, out: Path, provider: str, url: str, *extra: str) -> list[str]:
    return [
        "run",
        "--target-folder",
        str(spec),
        "--output",
        str(out),
        "--provider",
        provider,
        "--model",
        "mock-model",
        "--base-url",
        url,
        "--seeds-per-direction",
        "3",
        "--derivations-per-direction",
        "1",
        "--seed",
        "3",
        "--batch",
        *extra,
    ]


def base_url(mock_server, provider: str) -> str:
    return mock_server.openai_base_url if provider == "openai" else mock_server.url


def ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_batch_wait_collects_every_answer_without_a_direct_call(tmp_path, mock_server, capsys, keys, provider):
    spec = batch_spec(tmp_path)
    out = tmp_path / "out"
    code, text = run_cli(
        batch_args(spec, out, provider, base_url(mock_server, provider), "--batch-wait", "--batch-poll", "0"), capsys
    )
    assert code == 0, text
    assert mock_server.state.received == 0  # no direct chat call
    batch = mock_server.state.batch
    # seeds first, then the derivations of the accepted seeds: two rounds of jobs
    assert len(batch.created) == 2
    assert len(batch.lines_submitted) == len(set(batch.lines_submitted))  # nothing submitted twice
    assert len(records(out)) >= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["batch"]["states"] == {"collected": 2}
    assert manifest["batch"]["in_flight"] == 0
    assert SECRET not in (out / "batches.jsonl").read_text()
    status = json.loads((out / "manifest.json").read_text())
    assert status["status"] == "completed"


def test_without_wait_exits_4_then_the_same_command_collects(tmp_path, mock_server, capsys, keys):
    spec = batch_spec(tmp_path)
    out = tmp_path / "out"
    args = batch_args(spec, out, "openai", mock_server.openai_base_url)
    code, text = run_cli(args, capsys)
    assert code == 4, text
    assert "run the same command again" in text.lower()
    assert not (out / "dataset.jsonl").exists()
    code, text = run_cli(["status", str(out)], capsys)
    assert code == 0 and "1 job(s)" in text, text
    batch = mock_server.state.batch
    assert len(batch.created) == 1
    code, _ = run_cli(args, capsys)  # collects the seeds, submits their derivations
    assert code == 4
    assert len(batch.created) == 2
    code, text = run_cli(args, capsys)
    assert code == 0, text
    assert mock_server.state.received == 0
    assert len(batch.lines_submitted) == len(set(batch.lines_submitted))
    assert records(out)
    code, _ = run_cli(args, capsys)  # done: nothing more is submitted
    assert code == 0 and len(batch.created) == 2


def test_a_batch_run_writes_the_dataset_of_a_direct_run(tmp_path, mock_server, capsys, keys):
    """The mock answers a batch line as it answers the same body sent directly, so equal datasets
    mean the batch path sends the same requests and validates the answers the same way."""
    spec = batch_spec(tmp_path)
    direct = batch_args(spec, tmp_path / "direct", "openai", mock_server.openai_base_url)
    direct.remove("--batch")
    assert run_cli(direct, capsys)[0] == 0
    sent_directly = mock_server.state.received
    batch = batch_args(
        spec, tmp_path / "batch", "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0"
    )
    code, text = run_cli(batch, capsys)
    assert code == 0, text
    assert mock_server.state.received == sent_directly  # the batch run sent none
    assert len(mock_server.state.batch.lines_submitted) == sent_directly
    assert (tmp_path / "batch" / "dataset.jsonl").read_bytes() == (tmp_path / "direct" / "dataset.jsonl").read_bytes()


def test_dry_run_with_batch_says_the_price_is_halved_and_submits_nothing(tmp_path, mock_server, capsys, keys):
    spec = batch_spec(tmp_path)
    code, text = run_cli(
        [*batch_args(spec, tmp_path / "out", "openai", mock_server.openai_base_url), "--dry-run"], capsys
    )
    assert code == 0, text
    assert "half of this estimate" in text
    assert mock_server.state.batch.created == []


def test_once_the_target_is_reached_nothing_more_is_submitted(tmp_path, mock_server, capsys, keys):
    spec = batch_spec(tmp_path)
    args = batch_args(
        spec, tmp_path / "out", "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0"
    )
    code, text = run_cli([*args, "--target", "2"], capsys)
    assert code == 0, text
    assert len(mock_server.state.batch.created) == 1  # the 3 seeds were enough: no derivation round
    assert len(records(tmp_path / "out")) == 2


def test_status_shows_the_jobs_tokens_and_batch_cost(tmp_path, mock_server, capsys, keys):
    spec = batch_spec(tmp_path)
    out = tmp_path / "out"
    args = batch_args(spec, out, "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0")
    assert run_cli(args, capsys)[0] == 0
    code, text = run_cli(["status", str(out), "--json"], capsys)
    assert code == 0
    status = json.loads(text)
    assert status["status"] == "completed"
    assert status["batch"]["usage"]["completion_tokens"] > 0
    assert status["batch"]["requests"] == len(mock_server.state.batch.lines_submitted)
    code, text = run_cli(["status", str(out)], capsys)
    assert "2 collected" in text and "at batch prices" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-cache"], "cannot run with --no-cache"),
        (["--mode", "turns"], "needs the json generation mode"),
        (["--framework", "Filter"], "runs the Gen framework without a rater"),
    ],
)
def test_what_batch_cannot_do_is_refused_before_anything_is_submitted(
    tmp_path, mock_server, capsys, keys, extra, message
):
    spec = batch_spec(tmp_path)
    code, text = run_cli([*batch_args(spec, tmp_path / "out", "openai", mock_server.openai_base_url), *extra], capsys)
    assert code == 1 and message in text, text
    assert "Traceback" not in text
    assert mock_server.state.batch.created == [] and mock_server.state.received == 0


def test_a_provider_without_a_batch_api_is_refused(tmp_path, capsys, keys):
    spec = batch_spec(tmp_path)
    code, text = run_cli(["run", "--target-folder", str(spec), "--provider", "fake", "--batch"], capsys)
    assert code == 1 and "--batch works with the openai, anthropic and gemini providers" in text, text


def test_an_answer_that_fails_validation_is_asked_again_in_the_next_round(tmp_path, mock_server, capsys, keys):
    mock_server.state.batch.configure(prose_every=2)  # the seeds' job: every 2nd answer is prose
    spec = batch_spec(tmp_path)
    out = tmp_path / "out"
    code, text = run_cli(
        batch_args(spec, out, "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0"), capsys
    )
    assert code == 0, text
    jobs = list(mock_server.state.batch.jobs.values())
    # the re-ask carries the invalid answer and the reason, as in a direct run
    reasks = [
        line for job in jobs[1:] for line in job.lines if "previous answer was invalid" in json.dumps(line["body"])
    ]
    assert reasks
    assert mock_server.state.received == 0
    seeds = [json.loads(line) for line in (out / "seeds.jsonl").read_text().splitlines()]
    assert len(seeds) == 3  # every seed accepted after its re-ask
    assert any(s["metadata"]["attempt"] == 1 for s in seeds)
