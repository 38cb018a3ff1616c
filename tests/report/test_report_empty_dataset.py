"""QA finding 8: `fountain report` on an output whose dataset is empty reports the counts and the
rejections and says the dataset is empty, instead of refusing."""

from __future__ import annotations

import json

from fountain.cli import main
from fountain.frameworks import run_framework
from fountain.providers.fake import ScriptedProvider
from fountain.report.build import build_report
from fountain.report.html import render_html
from fountain.spec.load import load_spec
from framework_helpers import HashEmbedder, make_spec, options, records


def _empty_output(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    out = tmp_path / "out"
    run_framework(
        spec, options(out, max_retries=0), provider=ScriptedProvider(["not json at all"]), embedder=HashEmbedder()
    )
    return out


def test_report_of_an_empty_dataset_gives_counts_and_rejections(tmp_path, capsys):
    out = _empty_output(tmp_path)
    rejects = records(out / "rejects.jsonl")
    assert rejects and (out / "dataset.jsonl").read_text() == ""
    report = build_report(out, embed=False)
    f = report.figures
    assert f["source"]["conversations"] == 0 and f["source"]["empty"] is True
    assert any("dataset is empty" in note for note in f["source"]["notes"])
    assert f["counts"]["rejected_total"] == len(rejects)
    assert sum(f["counts"]["rejected"].values()) == len(rejects)
    page, _ = render_html(report)
    assert "The dataset is empty" in page
    json.loads(report.to_json())

    capsys.readouterr()
    try:
        main(["report", str(out)])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 0, text
    assert "dataset is empty" in text and rejects[0]["reason"] in text
