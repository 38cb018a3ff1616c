"""`fountain validate` and `fountain init`."""

from __future__ import annotations

from pathlib import Path

import pytest

from fountain.spec.load import load_spec
from spec_helpers import VALID, make_spec, run_cli

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus"


def test_validate_prints_a_summary(capsys):
    code, output = run_cli(["validate", "--target-folder", str(SAMPLES / "marriage_counsel")], capsys)
    assert code == 0
    assert "is valid" in output
    assert "COUNSELOR, COUNSELEE, PARTNER" in output
    assert "3 entities, 2 relations, 4 notes" in output
    assert "conversation (from the type key)" in output
    assert "jinja" in output
    assert "general, concretize" in output
    assert "2 (2 direction(s) × 1)" in output
    assert "at most 4 (2 seed(s) × 2 prefix(es) × 1 direction(s) × 1)" in output
    assert "warning" not in output


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not available")
def test_validate_janus_instruct_detects_the_type(capsys):
    code, output = run_cli(["validate", "-t", str(JANUS / "marriage_counsel_instruct")], capsys)
    assert code == 0
    assert "instruct (detected from the %s slots)" in output
    assert "legacy" in output
    assert "at most 4 (2 seed(s) × 1 prefix(es) × 2 direction(s) × 1)" in output


def test_validate_type_option_overrides(tmp_path, capsys):
    folder = make_spec(tmp_path)
    code, output = run_cli(["validate", "-t", str(folder), "--type", "instruct"], capsys)
    assert code == 0
    assert "instruct (from --type)" in output
    assert "warning:" in output and "--type says instruct" in output


def test_validate_shows_warnings_and_strict_fails_on_them(tmp_path, capsys):
    folder = make_spec(tmp_path, VALID.replace("user_role: COUNSELEE", "user_role: a worried spouse"))
    code, output = run_cli(["validate", "-t", str(folder)], capsys)
    assert code == 0
    assert "warning:" in output and "used as free text" in output
    code, output = run_cli(["validate", "-t", str(folder), "--strict"], capsys)
    assert code == 1 and "with --strict" in output and "Traceback" not in output


def test_validate_usage_error_exit_code_2(capsys):
    code, output = run_cli(["validate"], capsys)
    assert code == 2 and "--target-folder" in output


def test_init_then_validate_round_trip(tmp_path, capsys):
    folder = tmp_path / "new_spec"
    code, output = run_cli(["init", str(folder)], capsys)
    assert code == 0
    assert "wrote" in output and "fountain validate --target-folder" in output
    assert {p.name for p in folder.iterdir()} == {"setup.yaml", "diagram.mermaid", ".gitignore"}
    assert "output/" in (folder / ".gitignore").read_text().split()
    spec = load_spec(folder)
    assert spec.warnings == () and spec.template_style == "jinja"
    assert spec.user_role in spec.diagram.entities
    # the scaffold shows the new keys
    text = (folder / "setup.yaml").read_text()
    for key in ("generation:", "model:", "output:", "api_key_env", "personas", "raters:", "privacy:"):
        assert key in text
    code, output = run_cli(["validate", "-t", str(folder)], capsys)
    assert code == 0 and "is valid" in output


def test_init_refuses_to_overwrite_a_spec(tmp_path, capsys):
    folder = make_spec(tmp_path)
    before = (folder / "setup.yaml").read_text()
    code, output = run_cli(["init", str(folder)], capsys)
    assert code == 1
    assert "setup.yaml already exists" in output and "Traceback" not in output
    assert (folder / "setup.yaml").read_text() == before


def test_init_fills_an_empty_setup_keeps_a_diagram_and_appends_gitignore(tmp_path, capsys):
    folder = make_spec(tmp_path, setup="")
    (folder / ".gitignore").write_text("*.pyc")
    diagram = (folder / "diagram.mermaid").read_text()
    code, output = run_cli(["init", str(folder)], capsys)
    assert code == 0 and "kept" in output
    assert (folder / "diagram.mermaid").read_text() == diagram
    assert (folder / ".gitignore").read_text().splitlines()[0] == "*.pyc"
    assert "output/" in (folder / ".gitignore").read_text()
    assert (folder / "setup.yaml").read_text().startswith("# fountain spec")
    # the roles come from the kept diagram, so the new spec validates at once
    assert "first two entities" in output
    spec = load_spec(folder)
    assert (spec.user_role, spec.assistant_role) == ("COUNSELOR", "COUNSELEE")


def test_init_on_a_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, output = run_cli(["init", str(target)], capsys)
    assert code == 1 and "is a file, not a folder" in output


def test_validate_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\nfrom fountain.cli import main\n"
        f"try:\n    main(['validate', '-t', {str(SAMPLES / 'marriage_counsel')!r}])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'numpy', 'networkx', 'sentence_transformers', 'llama_cpp', 'openai',"
        " 'anthropic', 'google.genai', 'aiohttp', 'faiss', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
