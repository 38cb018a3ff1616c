"""`fountain render` and `fountain run` through the CLI (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fountain.cli import cli, main
from run_helpers import make_spec, records

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "marriage_counsel"
JANUS = Path("/work/shared/corpus/janus")


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def run_main(capsys, *argv: str):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_run_with_fake_provider(tmp_path):
    spec = make_spec(tmp_path)
    out = tmp_path / "out"
    result = invoke("run", "-t", str(spec), "--provider", "fake", "-o", str(out), "--seed", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""  # --quiet prints nothing on success
    for name in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl", "dataset.jsonl", "manifest.json"):
        assert (out / name).is_file(), name
    assert len(records(out / "seeds.jsonl")) == 4


def test_run_default_output_folder_and_summary(tmp_path):
    spec = make_spec(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "-t",
            str(spec),
            "--provider",
            "fake",
            "--seeds-per-direction",
            "1",
            "--derivations-per-direction",
            "0",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert (spec / "output" / "dataset.jsonl").is_file()
    assert len(records(spec / "output" / "dataset.jsonl")) == 2
    assert "accepted" in result.output  # the summary table (stderr is mixed in by CliRunner)


def test_run_options_reach_the_engine(tmp_path):
    spec = make_spec(tmp_path)
    out = tmp_path / "out"
    result = invoke(
        "run",
        "-t",
        str(spec),
        "--provider",
        "fake",
        "-o",
        str(out),
        "--quiet",
        "--type",
        "instruct",
        "--format",
        "sharegpt",
        "--max-turns",
        "2",
        "--seeds-per-direction",
        "1",
        "--derivations-per-direction",
        "2",
        "--mode",
        "turns",
        "--concurrency",
        "2",
    )
    assert result.exit_code == 0, result.output
    rows = records(out / "dataset.jsonl")
    assert len(rows) == 2 + 2 * 2 * 2
    assert all(r["metadata"]["type"] == "instruct" for r in rows)
    assert [m["from"] for m in rows[0]["conversations"]] == ["human", "gpt"]
    manifest = json.loads((out / "manifest.json").read_text())
    options = manifest["runs"][-1]["options"]
    assert options["mode"] == "turns" and options["concurrency"] == 2


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not present")
def test_run_replay_janus(tmp_path):
    out = tmp_path / "out"
    folder = JANUS / "marriage_counsel"
    result = invoke(
        "run",
        "-t",
        str(folder),
        "--provider",
        "fake",
        "--replay",
        str(folder / "outputs.json"),
        "-o",
        str(out),
        "--format",
        "janus",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "outputs.json").read_text())
    assert data and data[0]["conversations"] == json.loads((folder / "outputs.json").read_text())[0]["conversations"]
    assert data[0]["model"] == "replay"


def test_replay_implies_fake_and_refuses_other_providers(tmp_path, capsys):
    spec = make_spec(tmp_path)
    replay = tmp_path / "rec.jsonl"
    replay.write_text(
        json.dumps(
            {
                "conversations": [
                    {
                        "user": "Hello, our marriage needs help.",
                        "assistant": "Tell me what is going on in your marriage.",
                    }
                ]
            }
        )
        + "\n"
    )
    code, out, err = run_main(
        capsys,
        "run",
        "-t",
        str(spec),
        "--replay",
        str(replay),
        "-o",
        str(tmp_path / "out"),
        "--quiet",
        "--derivations-per-direction",
        "0",
    )
    assert code == 0, err
    assert len(records(tmp_path / "out" / "seeds.jsonl")) == 4
    code, out, err = run_main(
        capsys,
        "run",
        "-t",
        str(spec),
        "--replay",
        str(replay),
        "--provider",
        "openai",
        "-o",
        str(tmp_path / "out2"),
        "--quiet",
    )
    assert code == 1 and "--replay works with the fake provider only" in err
    assert "Traceback" not in err


def test_run_errors_are_clean(tmp_path, capsys):
    code, out, err = run_main(capsys, "run", "-t", str(tmp_path / "missing"), "--provider", "fake")
    assert code == 1 and "error:" in err and "Traceback" not in err
    code, out, err = run_main(capsys, "run", "-t", str(make_spec(tmp_path)), "--provider", "nope")
    # A usage error (exit 2) listing the valid providers.
    assert code == 2 and "'nope' is not one of" in err and "openai" in err


def test_a_missing_replay_or_price_file_is_a_located_error_and_starts_no_run(tmp_path, capsys):
    spec = make_spec(tmp_path)
    for option, hint in (
        ("--replay", "give an existing file with --replay"),
        ("--prices", "give an existing JSON file with --prices"),
    ):
        missing = tmp_path / f"missing{option}.json"
        code, out, err = run_main(
            capsys,
            "run",
            "-t",
            str(spec),
            option,
            str(missing),
            "--provider",
            "fake",
            "-o",
            str(tmp_path / "out"),
            "--quiet",
        )
        assert code == 1 and f"error: {missing}" in err and hint in err, err
        assert "Traceback" not in err
        out_dir = tmp_path / "out"  # at most the folder's lock file: no manifest, no journal
        assert not out_dir.exists() or {f.name for f in out_dir.iterdir()} <= {".lock"}


def test_render_json_mode(tmp_path):
    spec = make_spec(tmp_path)
    result = invoke("render", "-t", str(spec), "--provider", "openai")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "# mode: json" in text
    assert "seed request (direction 'general')" in text
    assert "Write a conversation between COUNSELEE and COUNSELOR." in text
    assert "derivation request (direction 'in-depth'" in text
    assert "(the user's first message)" in text  # the placeholder conversation


def test_render_turns_mode_and_json_output(tmp_path):
    spec = make_spec(tmp_path)
    result = invoke("render", "-t", str(spec), "--mode", "turns", "--direction", "concretize", "--json")
    assert result.exit_code == 0, result.output
    requests = json.loads(result.output)
    assert len(requests) == 3
    assert requests[0]["messages"][0]["role"] == "system"
    assert "You are the counselee" in requests[0]["messages"][0]["content"]
    assert "concrete" in requests[0]["messages"][0]["content"]
    assert requests[0]["schema"] is None
    json_mode = json.loads(invoke("render", "-t", str(spec), "--mode", "json", "--json").output)
    assert json_mode[0]["schema"]["properties"]["conversations"]["maxItems"] == 3


def test_render_unknown_direction(tmp_path, capsys):
    code, out, err = run_main(capsys, "render", "-t", str(make_spec(tmp_path)), "--direction", "sideways")
    assert code == 1 and "no direction 'sideways'" in err


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample spec not present")
def test_render_sample_default_is_turns_for_local():
    result = invoke("render", "-t", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "# mode: turns" in result.output


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not present")
def test_render_janus_instruct_slots():
    result = invoke("render", "-t", str(JANUS / "marriage_counsel_instruct"))
    assert result.exit_code == 0, result.output
    assert "# mode: json (instruct)" in result.output
    assert "Generate a pair of conversation between user(COUNSELEE) and assistant(COUNSELOR)." in result.output
