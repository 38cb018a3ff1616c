"""`fountain run --judge` and the spec's judge: block through the CLI, and `fountain report`'s
Judge section (terminal, HTML, report.json)."""

from __future__ import annotations

import json

import pytest

from run_helpers import SETUP, make_spec, records
from spec_helpers import run_cli


def _report_json(out, capsys) -> dict:
    from fountain.cli import main

    with pytest.raises(SystemExit) as info:
        main(["report", str(out), "--no-embed", "--json"])
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    return json.loads(captured.out)


def test_a_fake_judged_run_shows_its_scores_in_the_report(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", "-t", str(make_spec(tmp_path)), "--provider", "fake", "--judge", "fake", "-o", str(out)]
    code, text = run_cli([*args, "--seed", "2"], capsys)
    assert code == 0, text
    assert "fake:fake:" in text and "judged" in text  # the run summary's judge row
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    judge = _report_json(out, capsys)["judge"]
    assert judge["judge"] == "fake:fake" and judge["threshold"] == 3
    assert judge["judged"] == manifest["judge"]["judged"] > 0
    assert judge["mean_all"] == manifest["judge"]["mean"]
    assert judge["kept_judged"] == len(records(out / "dataset.jsonl"))
    assert judge["rejected"] == manifest["judge"]["rejected"]
    code, text = run_cli(["report", str(out), "--no-embed"], capsys)
    assert code == 0 and "Judge" in text and "helpful_safe" in text and "conversations judged" in text
    html = tmp_path / "report.html"
    code, text = run_cli(["report", str(out), "--no-embed", "--html", str(html)], capsys)
    assert code == 0, text
    page = html.read_text(encoding="utf-8")
    assert '<h2 id="judge">Judge</h2>' in page and "in_role" in page


def test_a_judge_block_with_an_openai_compatible_judge_costs_and_reports(tmp_path, capsys, mock_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    mock_server.configure(judge_scores={"*": 5, "grounded": 1})
    block = (
        f"judge:\n  provider: openai\n  model: gpt-4o-mini\n  base_url: {mock_server.openai_base_url}\n"
        "  threshold: 2\n  rubric:\n    grounded: Uses the scene's facts.\n    kind: The assistant is kind.\n"
    )
    out = tmp_path / "out"
    code, text = run_cli(
        ["run", "-t", str(make_spec(tmp_path, SETUP + block)), "--provider", "fake", "-o", str(out), "-q"], capsys
    )
    assert code == 0, text
    rejects = [r for r in records(out / "rejects.jsonl") if r["reason"].startswith("judge:")]
    assert rejects and {r["reason"] for r in rejects} == {"judge:grounded"}
    judge_requests = [r for r in mock_server.requests if "fountain_judgement" in json.dumps(r.body)]
    assert len(judge_requests) == len(rejects)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["judge"]["cost_usd"] > 0 and manifest["cost_usd"] == pytest.approx(manifest["judge"]["cost_usd"])
    report = _report_json(out, capsys)
    assert report["judge"]["cost_usd"] == manifest["judge"]["cost_usd"] and report["judge"]["cost_share"] == 1.0
    assert report["judge"]["rejected"] == {"grounded": len(rejects)}
    assert report["counts"]["rejected"]["judge:grounded"] == len(rejects)
    # `fountain status` shows the judge's line too, and its section in --json
    code, text = run_cli(["status", str(out)], capsys)
    assert (
        code == 0
        and f"judge     openai:gpt-4o-mini: {manifest['judge']['judged']} judged, {len(rejects)} rejected" in text
    )
    code, text = run_cli(["status", str(out), "--json"], capsys)
    assert json.loads(text)["judge"] == manifest["judge"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("judge:\n  threshold: 9\n", "judge.threshold: must be at most 5"),  # the schema's check
        ("judge:\n  rubric:\n    Overall: fine\n", "cannot be used"),  # the judge's own checks
        ("judge:\n  rubric:\n    in_role: '  '\n", "judge.rubric"),
        ("judge:\n  provider: opneai\n", "did you mean openai"),
    ],
)
def test_a_bad_judge_block_is_a_located_error(tmp_path, capsys, block, message):
    spec = make_spec(tmp_path, SETUP + block)
    code, text = run_cli(["run", "-t", str(spec), "--provider", "fake", "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 1, text
    assert message in text and "setup.yaml:" in text
    if message == "cannot be used":
        assert "hint: a criterion name is lower case" in text
    assert "Traceback" not in text
    assert not (tmp_path / "out" / "seeds.jsonl").exists()


def test_an_unknown_judge_provider_on_the_command_line_names_the_flag(tmp_path, capsys):
    spec = make_spec(tmp_path)
    code, text = run_cli(
        ["run", "-t", str(spec), "--provider", "fake", "--judge", "opneai", "-o", str(tmp_path / "o")], capsys
    )
    assert code == 1 and "--judge" in text and "did you mean 'openai'" in text and "Traceback" not in text


def test_a_dry_run_estimates_the_judges_requests_and_cost(tmp_path, capsys):
    spec = make_spec(tmp_path)
    args = ["run", "-t", str(spec), "--provider", "openai", "--judge", "openai:gpt-4o-mini", "--dry-run"]
    code, text = run_cli(args, capsys)
    assert code == 0, text
    assert "judge openai:gpt-4o-mini:" in text and "verdicts" in text and "judge estimated cost: $" in text
    code, text = run_cli(["run", "-t", str(spec), "--provider", "fake", "--dry-run"], capsys)
    assert code == 0 and "judge" not in text
    assert not (tmp_path / "spec" / "output").exists()
