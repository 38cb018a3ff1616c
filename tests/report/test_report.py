"""``fountain report`` end to end: output folders, single files, real data, JSON, terminal, HTML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from fountain.cli import main
from fountain.report import build_report
from fountain.report.load import load_dataset, parse_record

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"
SPEC = FIXTURES / "spec"
JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus" / "marriage_counsel"
JANUS_FILE = JANUS / "outputs.json" if (JANUS / "outputs.json").is_file() else FIXTURES / "janus" / "outputs.json"
JANUS_FILES = sorted({FIXTURES / "janus" / "outputs.json", JANUS_FILE})


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture()
def spec_copy(tmp_path: Path) -> Path:
    """The fixture spec folder with its output, copied (a report must never write, but be safe)."""
    target = tmp_path / "spec"
    shutil.copytree(SPEC, target)
    return target


class HashingEmbedder:
    """A deterministic bag-of-words embedder: enough geometry for the real-data metrics."""

    name = "hashing-bow"

    def encode(self, texts):
        out = np.zeros((len(texts), 256))
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % 256] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_json_report_of_a_fixture_output_folder(spec_copy, capsys):
    before = {p.name: p.read_bytes() for p in (spec_copy / "output").iterdir()}
    code, out, err = run_cli(capsys, "report", str(spec_copy / "output"), "--json", "--no-embed")
    assert code == 0, err
    figures = json.loads(out)  # stdout holds the JSON and nothing else
    counts = figures["counts"]
    assert counts["requested"] == 10 and counts["produced"] == 8
    assert counts["count_accuracy"] == pytest.approx(0.8)
    assert counts["accepted"] == {"seed": 4, "derivation": 4}
    assert counts["rejected"] == {"invalid_json": 2, "elimination:sorry": 1}
    assert counts["acceptance_rate"] == pytest.approx(8 / 11)
    # attempts 1 + 2 on accepted samples, (3-1) + (3-1) + 0 on rejects
    assert counts["validation_retries"] == 7 and counts["provider_retries"] == 2
    assert counts["usage"] == {"prompt_tokens": 4000, "completion_tokens": 1500, "total_tokens": 5500}
    assert counts["cost_usd"] == pytest.approx(0.0123)
    structure = figures["structure"]
    assert structure["turns_per_conversation"]["mean"] == pytest.approx(14 / 8)
    assert structure["with_system_message"] == 8
    diversity = figures["diversity"]
    assert set(diversity["by_kind"]) == {"seed", "derivation"}
    assert set(diversity["by_direction"]) == {"general", "diverse", "in-depth"}
    assert diversity["by_kind"]["seed"]["conversations"] == 4
    assert 0 < diversity["overall"]["distinct_1"] < diversity["overall"]["distinct_2"] <= 1
    # The manifest's spec folder no longer exists: the folder around the output is used.
    grounding = figures["grounding"]
    assert Path(grounding["spec"]) == spec_copy
    assert grounding["user_role"] == "NOVICE" and grounding["assistant_role"] == "GARDENER"
    coverage = grounding["coverage"]
    assert [coverage[k]["coverage"] for k in ("entities", "attributes", "relations", "notes")] == [0.5, 0.5, 1.0, 0.5]
    assert coverage["overall"] == {"coverage": pytest.approx(4 / 7), "mentioned": 4, "total": 7}
    assert figures["privacy"]["epsilon"] == 3.34 and figures["privacy"]["iterations"] == 2
    skipped = {entry["metric"]: entry["reason"] for entry in figures["skipped"]}
    assert any("embedding" in metric and "--no-embed" in reason for metric, reason in skipped.items())
    assert figures["readability"] is None or figures["readability"]["user"]["flesch_reading_ease"]["n"] == 14
    assert before == {p.name: p.read_bytes() for p in (spec_copy / "output").iterdir()}


def test_terminal_report_shows_every_section(spec_copy, capsys):
    code, out, err = run_cli(capsys, "report", str(spec_copy / "output"), "--no-embed")
    assert code == 0, err
    for title in (
        "Counts",
        "Structure",
        "Diversity",
        "Grounding",
        "Role consistency",
        "Privacy ledger",
        "Skipped",
        "invalid_json",
        "GARDENER",
    ):
        assert title in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("janus_file", JANUS_FILES, ids=lambda p: p.parent.name)
def test_report_on_a_janus_outputs_json(janus_file, capsys):
    code, out, err = run_cli(capsys, "report", str(janus_file), "--json", "--no-embed")
    assert code == 0, err
    figures = json.loads(out)
    data = json.loads(janus_file.read_text(encoding="utf-8"))
    assert figures["source"]["format"] == "janus"
    assert figures["counts"]["produced"] == len(data)
    assert figures["structure"]["turns_per_conversation"]["n"] == len(data)
    assert figures["counts"]["models"]  # the Janus "model" key is kept as provenance
    if (janus_file.parent / "setup.yaml").is_file():  # grounded by the spec beside the file
        assert figures["grounding"]["coverage"]["entities"]["total"] >= 2
    else:
        assert any(entry["metric"] == "grounding coverage" for entry in figures["skipped"])
    skipped = " ".join(entry["reason"] for entry in figures["skipped"])
    assert "no manifest.json" in skipped


def test_real_data_metrics_flag_a_copied_conversation(spec_copy, tmp_path):
    dataset = [json.loads(line) for line in (spec_copy / "output" / "dataset.jsonl").read_text().splitlines()]
    copied = dataset[2]  # s3 about roses
    real = [{"messages": copied["messages"][1:], "metadata": {"category": "gardening"}}]
    topics = [
        "bread dough rises slowly in a cold kitchen overnight",
        "tax forms are due at the end of april",
        "the train to the coast leaves every hour",
        "a violin needs its strings tuned before playing",
        "knitting a scarf takes patience and soft wool",
        "the chess opening controls the center squares",
    ]
    for index, topic in enumerate(topics):
        real.append(
            {
                "messages": [
                    {"role": "user", "content": f"Tell me about this: {topic}?"},
                    {"role": "assistant", "content": f"Sure. {topic}. Number {index}."},
                ]
            }
        )
    real_file = tmp_path / "real.jsonl"
    real_file.write_text("".join(json.dumps(r) + "\n" for r in real), encoding="utf-8")

    report = build_report(spec_copy / "output", real_data=real_file, embedder=HashingEmbedder())
    section = report.figures["real_data"]
    assert section["conversations"] == 7
    assert section["memorisation_rate"] == pytest.approx(1 / 8)
    assert section["memorised_ids"] == ["s3"]
    assert 0.0 <= section["knn_precision"] <= 1.0 and 0.0 <= section["knn_recall"] <= 1.0
    assert section["frechet_distance"] > 0
    assert set(section["ks"]) == {"turns", "words", "user_words", "assistant_words"}
    assert report.figures["diversity"]["overall"]["mean_pairwise_distance"] > 0
    # never the real text: the JSON holds figures and synthetic ids only
    assert "violin" not in report.to_json()


def test_real_data_without_embedder_reports_ks_and_says_what_it_skipped(spec_copy, capsys):
    code, out, err = run_cli(
        capsys, "report", str(spec_copy / "output"), "--json", "--no-embed", "--real-data", str(JANUS_FILE)
    )
    assert code == 0, err
    figures = json.loads(out)
    assert figures["real_data"]["ks"]["turns"]["statistic"] >= 0
    assert "frechet_distance" not in figures["real_data"]
    assert any("Fréchet" in entry["metric"] for entry in figures["skipped"])


@pytest.mark.slow
def test_real_embedder_end_to_end(spec_copy):
    pytest.importorskip("sentence_transformers")
    report = build_report(spec_copy / "output", real_data=FIXTURES / "janus" / "outputs.json")
    section = report.figures["real_data"]
    assert section["embedder"] and section["embedded"] == {"synthetic": 8, "real": 3}
    assert 0.0 <= section["memorisation_rate"] <= 1.0 and section["frechet_distance"] > 0
    spread = report.figures["diversity"]["overall"]["mean_pairwise_distance"]
    assert 0.0 < spread < 2.0


def test_folder_with_only_journals_and_a_torn_line(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    seeds = (SPEC / "output" / "seeds.jsonl").read_text(encoding="utf-8")
    torn = seeds + '{"messages": [{"role": "user", "cont'
    (folder / "seeds.jsonl").write_text(torn, encoding="utf-8")
    dataset = load_dataset(folder)
    assert dataset.format == "journals" and len(dataset.items) == 4
    assert any("torn" in note for note in dataset.notes)
    assert any("no manifest.json" in note for note in dataset.notes)
    assert (folder / "seeds.jsonl").read_text(encoding="utf-8") == torn  # read only: no repair


def test_sharegpt_dataset_gets_provenance_from_the_journals(tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(SPEC / "output", folder)
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    rows = []
    for line in (folder / "dataset.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rows.append({"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in record["messages"]]})
    (folder / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset = load_dataset(folder)
    assert dataset.format == "sharegpt"
    assert sorted(item.kind for item in dataset.items) == ["derivation"] * 4 + ["seed"] * 4
    assert {item.id for item in dataset.items} >= {"s1", "d4"}


def test_privacy_section_reads_a_ledger_dict_or_an_entry_list():
    from fountain.report.counts import privacy_section

    entries = [
        {"iteration": 1, "sigma": 3.0, "epsilon": 1.5, "delta": 1e-6},
        {"iteration": 2, "sigma": 3.0, "epsilon": 2.2, "delta": 1e-6},
    ]
    as_list = privacy_section({"privacy": entries})
    assert as_list["epsilon"] == 2.2 and as_list["iterations"] == 2 and as_list["delta"] == 1e-6
    as_dict = privacy_section({"privacy": {"ledger": entries, "epsilon_budget": 4.0, "epsilon": 2.2}})
    assert as_dict["epsilon_budget"] == 4.0 and as_dict["ledger"] == entries
    assert privacy_section({"privacy": []}) is None and privacy_section(None) is None


def test_parse_record_formats():
    item, fmt = parse_record({"conversation": {"user": "u", "assistant": "a"}, "type": "instruct"})
    assert fmt == "janus" and item.turns[0].user == "u" and item.metadata["type"] == "instruct"
    assert parse_record({"text": "no conversation"}) is None
    assert parse_record({"messages": [{"role": "system", "content": "only a system prompt"}]}) is None


def test_user_errors_exit_1_without_traceback(tmp_path, capsys):
    code, out, err = run_cli(capsys, "report", str(tmp_path / "missing"))
    assert code == 1 and "no such file or folder" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(capsys, "report", str(tmp_path / "empty"))
    assert code == 1 and "no conversations found" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\nnot json\n{"messages": []}\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "report", str(bad))
    assert code == 1 and "line 2" in err
    code, out, err = run_cli(capsys, "report", str(SPEC / "output"), "--spec", str(tmp_path / "empty"), "--no-embed")
    assert code == 1 and "setup.yaml" in err and "Traceback" not in err
    code, out, err = run_cli(
        capsys, "report", str(SPEC / "output"), "--no-embed", "--real-data", str(tmp_path / "nope.jsonl")
    )
    assert code == 1 and "real data file not found" in err


def test_html_is_self_contained_and_escapes_conversation_text(spec_copy, tmp_path, capsys):
    hostile = {
        "messages": [
            {"role": "user", "content": "<script>document.title='x'</script> & <img src=x>"},
            {"role": "assistant", "content": "</details><b>bold?</b>"},
        ],
        "metadata": {"id": "evil<1>", "kind": "seed", "direction": "general"},
    }
    with open(spec_copy / "output" / "dataset.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(hostile) + "\n")
    page_path = tmp_path / "report.html"
    code, out, err = run_cli(
        capsys, "report", str(spec_copy / "output"), "--no-embed", "--html", str(page_path), "--browse", "100"
    )
    assert code == 0, err
    page = page_path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "&lt;script&gt;document.title" in page and "&lt;img src=x&gt;" in page
    assert "evil&lt;1&gt;" in page
    assert page.count("<details>") == 9
    assert page.count('src="data:image/png;base64,') >= 4


# --- headless Chromium --------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
PROBE = """<script>
window.addEventListener('error', function (e) {
  var root = document.documentElement;
  root.setAttribute('data-script-errors', (root.getAttribute('data-script-errors') || '') + '|' + e.message);
});
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.dataset.images = String(images.length);
  document.body.dataset.imagesOk = String(broken.length === 0);
  document.body.dataset.details = String(document.querySelectorAll('details .msg').length > 0 ?
      document.querySelectorAll('details').length : 0);
  document.body.dataset.done = '1';
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def probe(tmp_path: Path, page: str, name: str) -> tuple[dict[str, str], str]:
    probed = tmp_path / name
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    dom = result.stdout
    attributes: dict[str, str] = {}
    for tag in ("html", "body"):
        found = re.search(rf"<{tag}\b([^>]*)>", dom)
        if found:
            attributes.update(re.findall(r'([\w-]+)="([^"]*)"', found.group(1)))
    return attributes, result.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_html_renders_in_headless_chromium(spec_copy, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from fountain.report.html import write_html

    real = tmp_path / "real.jsonl"
    real.write_text((spec_copy / "output" / "dataset.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    report = build_report(spec_copy / "output", real_data=real, embedder=HashingEmbedder(), browse=100)
    page_path = tmp_path / "report.html"
    assert write_html(report, page_path) == []
    page = page_path.read_text(encoding="utf-8")

    attributes, stderr = probe(tmp_path, page, "probed.html")
    assert attributes.get("data-done") == "1", stderr[-2000:]
    assert int(attributes["data-images"]) >= 6  # counts, 3 structure, diversity x2, grounding, nearest
    assert attributes["data-images-ok"] == "true"
    assert attributes["data-details"] == "8"  # every conversation rendered, with its messages
    assert "data-script-errors" not in attributes
    assert "Uncaught" not in stderr

    # The probe itself can fail: a broken image and a throwing script are caught.
    broken = page.replace("</body>", '<img src="data:image/png;base64,AAAA"><script>undefinedCall()</script></body>')
    attributes, _ = probe(tmp_path, broken, "broken.html")
    assert attributes["data-images-ok"] == "false"
    assert "undefinedCall" in attributes.get("data-script-errors", "")

    shot = tmp_path / "shot.png"
    result = chromium(
        tmp_path, "--window-size=1200,1600", "--hide-scrollbars", f"--screenshot={shot}", page_path.as_uri()
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 1600)
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page
