"""End to end: `fountain run --framework Feedback --rater PE --real-data ... --epsilon 4` on the
REAL bundled local model (SmolLM2-135M through llama.cpp) and the REAL bundled embedder
(all-MiniLM-L6-v2). Kept tiny for CI: one seed direction, one seed, at most 2 turns, no
derivations, one PE iteration, six private conversations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework_helpers import DIAGRAM, marriage_real, write_real

SETUP = """\
category: marriage counsel
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a short conversation between a {{ user_role }} and a {{ assistant_role }}.
  {{ scene }}
  {{ direction_instructions }}
derivational_prompt: |
  Continue this conversation: {{ conversation_json }}
  {{ direction_instructions }}
output_format: '{"conversations": [{"user": "...", "assistant": "..."}]}'
seed_evolving_directions: [general]
derivational_evolving_directions: [in-depth]
generation:
  seeds_per_direction: 1
  derivations_per_direction: 0
  min_turns: 1
  max_turns: 2
model:
  temperature: 0.7
"""


@pytest.mark.slow
def test_feedback_with_pe_runs_end_to_end_on_the_local_model_and_embedder(tmp_path):
    pytest.importorskip("llama_cpp", reason="the local extra (llama-cpp-python) is not installed")
    pytest.importorskip("sentence_transformers", reason="the embed extra is not installed")
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "setup.yaml").write_text(SETUP, encoding="utf-8")
    (folder / "diagram.mermaid").write_text(DIAGRAM, encoding="utf-8")
    real = write_real(tmp_path / "real.jsonl", marriage_real(6))
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "fountain",
        "run",
        "--target-folder",
        str(folder),
        "--output",
        str(out),
        "--framework",
        "Feedback",
        "--rater",
        "PE",
        "--real-data",
        str(real),
        "--epsilon",
        "4",
        "--iterations",
        "1",
        "--seed",
        "1",
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""  # --quiet prints nothing on success

    from fountain.run.export import record_validator

    validator = record_validator()
    dataset = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines() if line.strip()]
    assert dataset
    for record in dataset:
        validator.validate(record)
        assert record["metadata"]["iteration"] == 1 and record["metadata"]["provider"] == "local"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    privacy = manifest["privacy"]
    assert len(privacy["ledger"]) == 1 and privacy["ledger"][0]["epsilon"] <= 4.0 * (1 + 1e-9)
    assert privacy["epsilon_budget"] == 4.0 and privacy["private_records"] == 6
    # The private conversations reached no output.
    needle = json.loads(real.read_text().splitlines()[0])["messages"][0]["content"]
    for path in Path(out).rglob("*"):
        if path.is_file():
            assert needle.encode() not in path.read_bytes(), path.name
