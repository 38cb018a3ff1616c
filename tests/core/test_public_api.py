"""The library API a notebook uses: load a spec, run it, read the dataset and the samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fountain

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "marriage_counsel"


def test_every_public_name_resolves():
    for name in fountain.__all__:
        assert getattr(fountain, name) is not None, name


def test_a_notebook_run_loads_runs_and_reads_back(tmp_path):
    spec = fountain.load_spec(SAMPLE)
    assert isinstance(spec, fountain.Spec)
    options = fountain.RunOptions(provider="fake", output=tmp_path / "out", seed=3, quiet=True, fsync=False)
    result = fountain.generate(spec, options)
    assert isinstance(result, fountain.RunResult)
    records = fountain.read_dataset(result.output_dir)
    assert len(records) == result.dataset_records > 0
    assert all(record["messages"][-1]["role"] == "assistant" for record in records)
    samples = list(fountain.read_samples(result.output_dir))
    assert {s.provenance.kind for s in samples} == {"seed", "derivation"}
    assert {r["metadata"]["id"] for r in records} <= {s.id for s in samples}


def test_importing_fountain_loads_no_stage():
    code = "import sys, fountain; print(sorted(m for m in sys.modules if m.startswith('fountain.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
