"""Crash safety of `fountain run --batch`: a kill between intent and create, after create,
SIGKILL at random moments; errored and expired lines; limits; budget; cancel."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spec_helpers import VALID, make_spec, run_cli

SECRET = "sk-batch-test-NEVER-WRITE-ME"
# No embedding dedup, and no quality gates: these tests count jobs and rounds, which re-asks of the
# mock's templated answers would change (the gates are tested in tests/generation).
NO_EMBED = "raters:\n  dedup:\n    embedding_threshold: null\nquality:\n  enabled: false\n"


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    for name in ("FOUNTAIN_PROVIDER", "FOUNTAIN_MODEL", "FOUNTAIN_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def args_for(spec: Path, out: Path, provider: str, url: str, *extra: str) -> list[str]:
    return [
        "run", "--target-folder", str(spec), "--output", str(out), "--provider", provider, "--model", "mock-model",
        "--base-url", url, "--seeds-per-direction", "3", "--derivations-per-direction", "1", "--seed", "3",
        "--batch", *extra,
    ]  # fmt: skip


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]


def assert_nothing_submitted_twice(mock_server) -> None:
    submitted = mock_server.state.batch.lines_submitted
    assert len(submitted) == len(set(submitted)), "a request was submitted in two jobs"


class Killed(BaseException):
    """Stands for the process dying at this point (not an Exception: nothing may catch it)."""


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_killed_between_intent_and_create_the_rerun_finds_no_job_and_submits_once(
    tmp_path, mock_server, capsys, keys, monkeypatch, provider
):
    from fountain.batch.gemini import GeminiBatch
    from fountain.batch.openai import OpenAIBatch

    cls = OpenAIBatch if provider == "openai" else GeminiBatch

    async def dies(self, job_id, lines):
        raise Killed

    monkeypatch.setattr(cls, "submit", dies)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    url = mock_server.openai_base_url if provider == "openai" else mock_server.url
    with pytest.raises(Killed):
        run_cli(args_for(spec, out, provider, url), capsys)
    assert [e["event"] for e in events(out)] == ["intent"]
    monkeypatch.undo()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    code, text = run_cli(args_for(spec, out, provider, url, "--batch-wait", "--batch-poll", "0"), capsys)
    assert code == 0, text
    assert "abandoned" in [e["event"] for e in events(out)]
    assert_nothing_submitted_twice(mock_server)
    assert mock_server.state.received == 0


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_killed_after_create_before_the_id_is_written_the_rerun_adopts_the_job(
    tmp_path, mock_server, capsys, keys, monkeypatch, provider
):
    from fountain.batch.gemini import GeminiBatch
    from fountain.batch.openai import OpenAIBatch

    cls = OpenAIBatch if provider == "openai" else GeminiBatch
    real = cls.submit

    async def dies_after(self, job_id, lines):
        await real(self, job_id, lines)
        raise Killed

    monkeypatch.setattr(cls, "submit", dies_after)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    url = mock_server.openai_base_url if provider == "openai" else mock_server.url
    with pytest.raises(Killed):
        run_cli(args_for(spec, out, provider, url), capsys)
    assert len(mock_server.state.batch.created) == 1
    monkeypatch.setattr(cls, "submit", real)
    code, text = run_cli(args_for(spec, out, provider, url, "--batch-wait", "--batch-poll", "0"), capsys)
    assert code == 0, text
    created = [e for e in events(out) if e["event"] == "created"]
    assert created[0]["state"] == "found"  # looked up by its metadata / display name
    assert len(mock_server.state.batch.created) == 2  # the seeds' job (adopted) and the derivations'
    assert_nothing_submitted_twice(mock_server)
    assert mock_server.state.received == 0


def test_anthropic_job_of_unknown_fate_is_refused_until_the_user_forgets_it(
    tmp_path, mock_server, capsys, keys, monkeypatch
):
    from fountain.batch.anthropic import AnthropicBatch

    async def dies(self, job_id, lines):
        raise Killed

    monkeypatch.setattr(AnthropicBatch, "submit", dies)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "anthropic", mock_server.url)
    with pytest.raises(Killed):
        run_cli(args, capsys)
    monkeypatch.undo()
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    code, text = run_cli(args, capsys)
    assert code == 1 and "cannot be looked up" in text, text
    assert mock_server.state.batch.created == []  # refused rather than risk paying twice
    code, text = run_cli(["cancel", str(out), "--forget-unconfirmed"], capsys)
    assert code == 0 and "forgotten" in text, text
    code, text = run_cli([*args, "--batch-wait", "--batch-poll", "0"], capsys)
    assert code == 0, text
    assert_nothing_submitted_twice(mock_server)


def test_errored_and_expired_lines_are_resubmitted_then_everything_is_collected(tmp_path, mock_server, capsys, keys):
    mock_server.state.batch.configure(error_every=2, expire=True)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    code, text = run_cli(
        args_for(spec, out, "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0"), capsys
    )
    assert code == 0, text
    submitted = mock_server.state.batch.lines_submitted
    assert len(submitted) > len(set(submitted))  # the failed lines went into later jobs
    assert max(submitted.count(key) for key in submitted) <= 3  # bounded
    assert mock_server.state.received == 0
    reasons = (
        [json.loads(line)["reason"] for line in (out / "rejects.jsonl").read_text().splitlines()]
        if (out / "rejects.jsonl").exists()
        else []
    )
    assert "provider_error" not in reasons or all(r == "provider_error" for r in reasons)


def test_a_line_that_always_fails_becomes_a_reject_with_the_batch_reason(tmp_path, mock_server, capsys, keys):
    mock_server.state.batch.configure(error_every=1)  # every line errors, every time
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    code, text = run_cli(
        args_for(spec, out, "openai", mock_server.openai_base_url, "--batch-wait", "--batch-poll", "0"), capsys
    )
    submitted = mock_server.state.batch.lines_submitted
    assert len(set(submitted)) == 3 and len(submitted) == 9  # 3 seeds, 3 submissions each
    assert mock_server.state.received == 0
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejects} == {"provider_error"}
    assert all("http_500" in r["detail"] for r in rejects), rejects[0]["detail"]
    assert code == 1  # nothing accepted: the run says so


def test_requests_beyond_the_limits_are_split_over_jobs(tmp_path, mock_server, keys):
    from fountain.batch.jobs import BatchLimits
    from fountain.batch.run import run_batch
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec

    spec = load_spec(make_spec(tmp_path, VALID + NO_EMBED))
    options = RunOptions(
        output=tmp_path / "out", provider="openai", model="mock-model", base_url=mock_server.openai_base_url,
        seeds_per_direction=5, derivations_per_direction=0, seed=3, quiet=True,
    )  # fmt: skip
    report, result = run_batch(spec, options, wait=True, poll_s=0, limits=BatchLimits(max_requests=2, max_bytes=10**6))
    assert result is not None and report.done
    assert len(mock_server.state.batch.created) == 3  # 5 requests, 2 a job
    assert len(result.samples) == 5


def test_budget_is_checked_at_batch_prices_before_anything_is_submitted(tmp_path, mock_server, capsys, keys):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai": {"mock-model": {"input": 1000, "output": 1000}}}))
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "openai", mock_server.openai_base_url, "--prices", str(prices), "--budget", "0.01")
    code, text = run_cli(args, capsys)
    assert code == 1 and "budget" in text, text
    assert mock_server.state.batch.created == []


def test_batch_cost_is_half_the_direct_price(tmp_path, mock_server, capsys, keys):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai": {"mock-model": {"input": 1, "output": 1}}}))
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "openai", mock_server.openai_base_url, "--prices", str(prices), "--batch-wait")
    code, text = run_cli([*args, "--batch-poll", "0"], capsys)
    assert code == 0, text
    collected = [e for e in events(out) if e["event"] == "collected"]
    files = {k: v for k, v in mock_server.state.batch.files.items() if k.endswith("-out")}
    tokens = 0
    for content in files.values():
        for line in content.splitlines():
            usage = json.loads(line)["response"]["body"]["usage"]
            tokens += usage["prompt_tokens"] + usage["completion_tokens"]
    assert sum(e["cost_usd"] for e in collected) == pytest.approx(tokens / 1e6 * 0.5, rel=1e-3)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_cancel_cancels_the_jobs_that_are_waiting(tmp_path, mock_server, capsys, keys, provider):
    mock_server.state.batch.configure(polls=100)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    url = mock_server.openai_base_url if provider == "openai" else mock_server.url
    code, _ = run_cli(args_for(spec, out, provider, url), capsys)
    assert code == 4
    code, text = run_cli(["cancel", str(out)], capsys)
    assert code == 0 and "cancel requested" in text, text
    assert mock_server.state.batch.cancelled == mock_server.state.batch.created
    # the next run collects the cancelled job (nothing answered) and submits its requests again
    mock_server.state.batch.configure(polls=1)
    code, text = run_cli(args_for(spec, out, provider, url, "--batch-wait", "--batch-poll", "0"), capsys)
    assert code == 0, text
    assert mock_server.state.received == 0


def test_structured_output_travels_inside_each_batch_line(tmp_path, mock_server, capsys, keys):
    spec = make_spec(tmp_path, VALID + NO_EMBED)
    for provider, url in (
        ("openai", mock_server.openai_base_url),
        ("anthropic", mock_server.url),
        ("gemini", mock_server.url),
    ):
        out = tmp_path / provider
        assert run_cli(args_for(spec, out, provider, url), capsys)[0] == 4
    bodies = {job.api: job.lines[0]["body"] for job in mock_server.state.batch.jobs.values()}
    assert bodies["openai"]["response_format"]["type"] == "json_schema"
    assert bodies["anthropic"]["tool_choice"]["type"] == "tool"
    config = bodies["gemini"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" in config or "responseSchema" in config


def _cli(spec: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fountain",
        *args_for(spec, out, "openai", url, "--batch-wait", "--batch-poll", "0.05", "--quiet"),
    ]


@pytest.mark.slow  # about 20 s: six fountain processes
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_any_moment_never_submits_a_request_twice(tmp_path, mock_server):
    """A real `fountain run --batch --batch-wait` killed with SIGKILL at random moments, rerun each
    time; the mock ends jobs after a few polls, so kills land while submitting, polling and collecting."""
    mock_server.state.batch.configure(polls=3)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    env = dict(os.environ, OPENAI_API_KEY=SECRET, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    for name in ("FOUNTAIN_PROVIDER", "FOUNTAIN_MODEL", "FOUNTAIN_BASE_URL"):
        env.pop(name, None)
    rng = random.Random(15)
    kills = 0
    for _ in range(5):
        process = subprocess.Popen(
            _cli(spec, out, mock_server.openai_base_url), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        # wait for the ledger to grow, then kill a little later
        before = (out / "batches.jsonl").stat().st_size if (out / "batches.jsonl").exists() else 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            size = (out / "batches.jsonl").stat().st_size if (out / "batches.jsonl").exists() else 0
            if size > before:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.15))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(30)
    final = subprocess.run(
        _cli(spec, out, mock_server.openai_base_url), env=env, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    assert kills >= 1
    assert_nothing_submitted_twice(mock_server)
    assert mock_server.state.received == 0
    assert (out / "dataset.jsonl").read_text().strip()


def test_killed_while_collecting_the_rerun_keeps_the_answers_and_their_cost(
    tmp_path, mock_server, capsys, keys, monkeypatch
):
    from fountain.batch.jobs import Ledger

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai": {"mock-model": {"input": 1, "output": 1}}}))
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "openai", mock_server.openai_base_url, "--prices", str(prices))
    assert run_cli(args, capsys)[0] == 4  # seeds submitted
    real = Ledger.append

    def dies_on_collected(self, event):
        if event.get("event") == "collected":
            raise Killed  # every answer of the job is in the cache, the ledger does not say so
        return real(self, event)

    monkeypatch.setattr(Ledger, "append", dies_on_collected)
    with pytest.raises(Killed):
        run_cli(args, capsys)
    monkeypatch.setattr(Ledger, "append", real)
    code, text = run_cli([*args, "--batch-wait", "--batch-poll", "0"], capsys)
    assert code == 0, text
    assert_nothing_submitted_twice(mock_server)
    seeds_job = next(e for e in events(out) if e["event"] == "collected")
    assert seeds_job["cost_usd"] > 0 and seeds_job["failed"] == {}


def test_jobs_of_another_spec_version_waiting_in_the_folder_are_not_mixed(tmp_path, mock_server, capsys, keys):
    mock_server.state.batch.configure(polls=100)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "openai", mock_server.openai_base_url)
    assert run_cli(args, capsys)[0] == 4
    (spec / "setup.yaml").write_text(VALID.replace("max_turns: 4", "max_turns: 3") + NO_EMBED)
    code, text = run_cli(args, capsys)
    assert code == 1 and "another version of the spec" in text, text
    assert len(mock_server.state.batch.created) == 1


def test_a_batch_api_answer_of_the_wrong_shape_is_an_error_message_not_a_traceback(
    tmp_path, mock_server, capsys, keys, monkeypatch
):
    from fountain.batch.base import Http

    async def odd(self, method, path, *, json_body=None, data=None):
        return {"object": "not what the API documents"}

    monkeypatch.setattr(Http, "json", odd)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    code, text = run_cli(args_for(spec, out, "openai", mock_server.openai_base_url), capsys)
    assert code == 1, text
    assert "unexpected answer to submit" in text and "Traceback" not in text
    assert SECRET not in text
    # the intent stays: the next run looks the job up before submitting anything again
    assert [e["event"] for e in events(out)] == ["intent"]


def test_a_server_without_a_batch_api_gets_a_message_that_says_so(tmp_path, mock_server, capsys, keys):
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    url = mock_server.url + "/no-batch-here/v1"  # the mock has no batch routes under this prefix
    code, text = run_cli(args_for(spec, out, "openai", url), capsys)
    assert code == 1, text
    assert "404" in text and "implement the batch API" in text
    assert "Traceback" not in text and SECRET not in text
    assert [e["event"] for e in events(out)] == ["intent", "abandoned"]  # refused: no job exists


def test_a_direct_run_over_jobs_still_waiting_is_refused(tmp_path, mock_server, capsys, keys):
    mock_server.state.batch.configure(polls=100)
    spec, out = make_spec(tmp_path, VALID + NO_EMBED), tmp_path / "out"
    args = args_for(spec, out, "openai", mock_server.openai_base_url)
    assert run_cli(args, capsys)[0] == 4
    direct = [a for a in args if a != "--batch"]
    code, text = run_cli(direct, capsys)
    assert code == 1 and "would pay for them again" in text, text
    assert mock_server.state.received == 0
