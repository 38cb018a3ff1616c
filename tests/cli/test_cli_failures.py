"""Fixes from the QA pass (/tmp/qa FINDINGS #2, #4-#7, #10, #11, #13, #24, #25): failed runs exit 1,
startup errors leave the folder alone, status of killed/damaged runs, the output-folder lock,
and CLI polish."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_helpers import PRICES, Sleeps, request
from fountain.cli import cli, main
from fountain.errors import ErrorRateError, OutputError, TransientProviderError
from fountain.providers.dispatch import Dispatcher
from fountain.providers.throttle import RetryPolicy
from fountain.run.lock import output_lock
from fountain.run.status import collect_status
from fountain.testing import ScriptedProvider
from run_helpers import make_spec, records


def run_main(capsys, *argv: str):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def fake_run(capsys, spec: Path, out: Path, *extra: str):
    return run_main(capsys, "run", "-t", str(spec), "--provider", "fake", "-o", str(out), "--seed", "1", "-q", *extra)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- #2: a run where every request fails -----------------------------------------------------------


async def test_a_small_window_is_judged_after_ten_attempts():
    provider = ScriptedProvider([TransientProviderError("openai: connection to X failed (refused)")] * 100)
    d = Dispatcher(
        provider, sleep=Sleeps(), prices=PRICES, retry=RetryPolicy(max_attempts=8, base_delay=0, jitter=False)
    )  # window 50
    with pytest.raises(ErrorRateError) as info:
        for i in range(3):
            try:
                await d.complete(request(i))
            except TransientProviderError:
                pass
    assert len(provider.calls) == 10
    assert "last error: openai: connection to X failed (refused)" in info.value.message
    assert "--base-url" in info.value.hint


def test_an_unreachable_endpoint_fails_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after=None: 0.0)
    out = tmp_path / "out"
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, stdout, err = run_main(
        capsys,
        "run",
        "-t",
        str(make_spec(tmp_path)),
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
    )
    assert code == 1, err
    assert "127.0.0.1" in err and "last error" in err and "--base-url" in err
    assert "run the same command again" in err and "Traceback" not in err
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"


def test_zero_accepted_because_of_provider_errors_is_an_error(tmp_path):
    from fountain import generate
    from fountain.errors import BadRequestError
    from fountain.spec.load import load_spec
    from run_helpers import options

    class Refusing:
        name = "openai"
        model = "m"
        base_url = "http://127.0.0.1:1/v1"

        def identity(self):
            return {"provider": "openai", "model": "m", "base_url": self.base_url}

        async def complete(self, request):
            raise BadRequestError("http://127.0.0.1:1/v1 rejected the request (400): bad field")

        async def aclose(self):
            pass

    out = tmp_path / "out"
    with pytest.raises(Exception) as info:
        generate(
            load_spec(make_spec(tmp_path)),
            options(out, seeds_per_direction=1, derivations_per_direction=0),
            provider=Refusing(),
        )
    assert "no conversation was accepted" in info.value.message
    assert "last error: http://127.0.0.1:1/v1 rejected the request (400)" in info.value.message
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host/v1", "http://", "http://a b/v1"])
def test_base_url_is_checked_on_the_command_line(tmp_path, capsys, url):
    code, _, err = run_main(
        capsys,
        "run",
        "-t",
        str(make_spec(tmp_path)),
        "--provider",
        "openai",
        "--base-url",
        url,
        "-o",
        str(tmp_path / "out"),
    )
    assert code == 2 and "--base-url" in err and "http" in err
    assert not (tmp_path / "out").exists()


# --- #4: startup errors leave the folder as it was ---------------------------------------------------


def test_bad_cache_does_not_touch_a_completed_manifest(tmp_path, capsys):
    spec, out = make_spec(tmp_path), tmp_path / "out"
    assert fake_run(capsys, spec, out)[0] == 0
    before = (out / "manifest.json").read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = fake_run(capsys, spec, out, "--cache", str(blocker / "c.sqlite"))
    assert code == 1 and "cache" in err
    assert (out / "manifest.json").read_bytes() == before


def test_bad_prices_write_nothing(tmp_path, capsys):
    prices = tmp_path / "prices.json"
    prices.write_text("{not json")
    out = tmp_path / "out"
    code, _, err = fake_run(capsys, make_spec(tmp_path), out, "--prices", str(prices))
    assert code == 1 and "error:" in err
    assert not out.exists()


def test_engine_checks_the_cache_before_the_manifest(tmp_path):
    from fountain import generate
    from fountain.errors import FountainError
    from fountain.spec.load import load_spec
    from run_helpers import options

    spec, out = load_spec(make_spec(tmp_path)), tmp_path / "out"
    generate(spec, options(out, provider="fake"))
    before = (out / "manifest.json").read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FountainError):
        generate(spec, options(out, provider="fake", cache=blocker / "c.sqlite"))
    assert (out / "manifest.json").read_bytes() == before


# --- #5, #6: status of a killed or damaged run ------------------------------------------------------


def test_the_plan_is_in_the_manifest_while_the_run_goes(tmp_path):
    from fountain import generate
    from fountain.providers.fake import FakeProvider
    from fountain.spec.load import load_spec
    from run_helpers import options

    seen = []
    out = tmp_path / "out"

    class Peeking(FakeProvider):
        async def complete(self, request):
            if not seen:
                seen.append(json.loads((out / "manifest.json").read_text()))
            return await super().complete(request)

    from fountain.providers.base import ProviderConfig

    generate(load_spec(make_spec(tmp_path)), options(out), provider=Peeking(ProviderConfig(provider="fake")))
    manifest = seen[0]
    assert manifest["status"] == "running"
    assert manifest["counts"]["seeds_requested"] == 4


def test_status_of_a_killed_run_counts_from_the_journals(tmp_path, capsys):
    out = tmp_path / "out"
    assert fake_run(capsys, make_spec(tmp_path), out)[0] == 0
    journal_usage = sum(
        r["metadata"]["usage"]["completion_tokens"]
        for name in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl")
        for r in records(out / name)
    )
    assert journal_usage > 0
    # What a kill -9 leaves: the manifest as written at the start of the session.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["status"] = "running"
    manifest["usage"] = {"prompt_tokens": 0, "completion_tokens": 0}
    manifest["counts"]["derivations_planned"] = 0
    (out / "manifest.json").write_text(json.dumps(manifest))
    status = collect_status(out, check_spec=False)
    assert status["usage"]["completion_tokens"] == journal_usage
    assert status["usage_source"] == "journals"
    assert status["seeds"]["requested"] == 4 and status["seeds"]["left"] == 0
    assert status["derivations"]["planned"] >= status["derivations"]["accepted"] > 0


def test_status_warns_about_a_damaged_journal_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert fake_run(capsys, make_spec(tmp_path), out)[0] == 0
    lines = (out / "seeds.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1, '{"garbage": tru\n')
    (out / "seeds.jsonl").write_text("".join(lines))
    status = collect_status(out, check_spec=False)
    assert status["seeds"]["accepted"] == 1
    assert status["problems"] and "seeds.jsonl line 2 is not a valid record" in status["problems"][0]
    code, stdout, err = run_main(capsys, "status", str(out))
    assert code == 0 and "warning:" in stdout and "line 2" in stdout


# --- #7: one run per output folder --------------------------------------------------------------------


def test_a_second_run_in_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom fountain.run.lock import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = fake_run(capsys, make_spec(tmp_path), out)
        assert code == 1 and "another fountain run is using" in err and f"pid {holder.pid}" in err
        assert not (out / "manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the lock with the process: the folder is usable again.
    assert fake_run(capsys, make_spec(tmp_path), out)[0] == 0


def test_the_lock_is_reentrant_in_its_thread_only(tmp_path):
    errors = []
    with output_lock(tmp_path):
        with output_lock(tmp_path):
            pass

        def other():
            try:
                with output_lock(tmp_path):
                    pass
            except OutputError as error:
                errors.append(error)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "another fountain run" in errors[0].message
    with output_lock(tmp_path):  # released
        pass


def test_a_run_that_writes_nothing_leaves_no_new_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_HTTP_CLIENT", "curl")  # refused when the provider is made
    out = tmp_path / "new" / "out"
    code, _, err = run_main(
        capsys,
        "run",
        "--target-folder",
        str(make_spec(tmp_path)),
        "--provider",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--output",
        str(out),
    )
    assert code == 1 and "FOUNTAIN_HTTP_CLIENT='curl'" in err and "Traceback" not in err
    assert not out.exists()
    # A folder that was there before stays, and so does anything in it.
    out.mkdir()
    code, _, _ = run_main(
        capsys,
        "run",
        "--target-folder",
        str(make_spec(tmp_path)),
        "--provider",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--output",
        str(out),
    )
    assert code == 1 and out.is_dir()


def test_a_lock_on_a_removed_lock_file_is_refused(tmp_path, monkeypatch):
    import os

    from fountain.run import lock as manifest  # the lock module opens the lock file

    out = tmp_path / "out"
    with output_lock(out):
        stale = os.open(out / ".lock", os.O_RDWR)  # a second run opened it before it was removed
    assert not out.exists()
    out.mkdir()
    (out / ".lock").write_text("")  # a third run's new lock file

    class OsOpeningTheRemovedFile:
        def __getattr__(self, name):
            return getattr(os, name)

        def open(self, *args, **kwargs):
            return os.dup(stale)

    monkeypatch.setattr(manifest, "os", OsOpeningTheRemovedFile())
    try:
        with pytest.raises(OutputError, match="another fountain run is using"), output_lock(out):
            pass
    finally:
        os.close(stale)


# --- small ones -------------------------------------------------------------------------------------------


def test_names_are_case_insensitive_choices(tmp_path, capsys):
    spec = make_spec(tmp_path)
    code, _, err = run_main(capsys, "run", "-t", str(spec), "--provider", "openia")
    assert code == 2 and "'openia' is not one of" in err and "openai" in err
    code, _, err = run_main(capsys, "run", "-t", str(spec), "--provider", "fake", "--rater", "xx")
    assert code == 2 and "'pe', 'rf'" in err.lower()
    code, _, err = run_main(capsys, "run", "-t", str(spec), "--provider", "fake", "--framework", "nope")
    assert code == 2 and "genllm" in err.lower()
    out = tmp_path / "out"
    code, _, err = run_main(
        capsys, "run", "-t", str(spec), "--provider", "FAKE", "--framework", "gen", "-o", str(out), "-q", "--seed", "1"
    )
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["provider"]["provider"] == "fake"


def test_choice_lists_match_the_registries():
    from fountain.cli import FRAMEWORK_CHOICES, PROVIDER_CHOICES, RATER_CHOICES
    from fountain.frameworks import FRAMEWORKS, RATERS
    from fountain.providers import PROVIDERS

    assert list(PROVIDER_CHOICES.choices) == list(PROVIDERS)
    assert list(FRAMEWORK_CHOICES.choices) == list(FRAMEWORKS)
    assert list(RATER_CHOICES.choices) == list(RATERS)


def test_validate_strict_does_not_say_valid_first(tmp_path, capsys):
    from test_cli_validate import VALID

    folder = make_spec(tmp_path, VALID.replace("user_role: COUNSELEE", "user_role: a worried spouse"), name="strict")
    code, out, err = run_main(capsys, "validate", "-t", str(folder), "--strict")
    assert code == 1 and "with --strict" in err and "warning:" in err
    assert "is valid" not in out + err


def test_run_help_documents_every_option():
    text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert "Seed conversations per seed direction" in text
    assert "Derivations per accepted seed" in text


def test_quiet_prints_nothing_on_success(tmp_path, capsys):
    code, out, err = fake_run(capsys, make_spec(tmp_path), tmp_path / "out")
    assert code == 0 and out == "" and err == ""


@pytest.mark.parametrize("folder", ["", "  "])
def test_init_refuses_an_empty_folder_name(tmp_path, capsys, monkeypatch, folder):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "init", folder)
    assert code == 2 and "must not be empty" in err
    assert list(tmp_path.iterdir()) == []


def test_binary_file_message_names_the_path_once(tmp_path):
    from fountain.spec.sourcefile import FileProblem, read_text_file

    path = tmp_path / "setup.yaml"
    path.write_bytes(b"a\x00b")
    with pytest.raises(FileProblem) as info:
        read_text_file(path, "setup.yaml")
    assert info.value.problem.message.startswith(f"{path} is a binary file")


def test_diagram_tree_keeps_long_labels_whole_when_piped(tmp_path):
    label = "a relationship label long enough to run well past the eighty columns of a pipe"
    path = tmp_path / "long.mermaid"
    path.write_text(f'erDiagram\n    CUSTOMER ||--o{{ ORDER : "{label}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "fountain", "diagram", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert f"CUSTOMER {label} ORDER" in result.stdout


def test_status_follows_a_moved_spec_folder_or_the_one_given(tmp_path, capsys):
    spec = make_spec(tmp_path / "before")
    assert fake_run(capsys, spec, spec / "output")[0] == 0
    moved = tmp_path / "after" / "spec"
    moved.parent.mkdir()
    spec.rename(moved)  # e.g. the repository cloned elsewhere
    status = collect_status(moved / "output")
    assert status["spec"]["folder"] == str(spec.resolve())  # what the run recorded
    assert status["spec"]["compared_with"] == str(moved.resolve())
    assert status["spec"]["changed_since"] == []
    code, stdout, _ = run_main(capsys, "status", str(moved / "output"))
    assert code == 0 and "unchanged since" in stdout and "compared with" in stdout
    # An output kept elsewhere: the spec folder is named, or the note says how to name it.
    outside = tmp_path / "kept"
    (moved / "output").rename(outside)
    assert "pass --spec DIR" in collect_status(outside)["spec"]["changed_since"]
    (moved / "setup.yaml").write_text(
        (moved / "setup.yaml")
        .read_text()
        .replace("seed_evolving_directions: [general, concretize]", "seed_evolving_directions: [general]")
    )
    code, stdout, _ = run_main(capsys, "status", str(outside), "--spec", str(moved), "--json")
    status = json.loads(stdout)
    assert code == 0 and status["spec"]["compared_with"] == str(moved)
    assert any("direction" in field for field in status["spec"]["changed_since"])
