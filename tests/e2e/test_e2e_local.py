"""End to end with the real embedded model (SmolLM2-135M via llama.cpp): `fountain run` on the
marriage-counselling sample with small counts; every record must match sft_record.schema.json.

About 1-2 minutes on 2 CPU cores (two runs of about 8 short model calls each); skipped when the local extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fountain.cli import main
from fountain.run.export import record_validator

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "marriage_counsel"


def _local_model_available() -> bool:
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        from fountain.providers.local import default_model_path

        return default_model_path().is_file()
    except Exception:
        return False


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _local_model_available(), reason="needs fountain[local]")]


def test_local_model_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "run",
        "--target-folder",
        str(SAMPLE),
        "--output",
        str(out),
        "--seed",
        "7",
        "--seeds-per-direction",
        "1",
        "--derivations-per-direction",
        "1",
        "--max-turns",
        "1",
        "--quiet",
    ]
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["provider"]["provider"] == "local"
    assert manifest["runs"][-1]["options"]["mode"] == "turns"

    records = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    seeds = [r for r in records if r["metadata"]["kind"] == "seed"]
    # 2 seed directions x 1; each accepted seed of 1 turn gives 1 derivation (1 prefix x 1 direction)
    assert len(seeds) + sum(r["kind"] == "seed" for r in rejects) == 2
    assert seeds, f"no seed accepted: {rejects}"
    validator = record_validator()
    for record in records:
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, errors
        assert record["metadata"]["provider"] == "local"
        assert record["messages"][0] == {"role": "system", "content": "You are a warm, patient marriage counselor."}
        assert record["metadata"]["usage"]["completion_tokens"] > 0
    for reject in rejects:
        assert reject["reason"] and reject["detail"]

    # --seed makes the local model reproducible: a second run elsewhere writes the same files
    again = tmp_path / "again"
    with pytest.raises(SystemExit) as info:
        main([*argv[:3], "--output", str(again), *argv[5:]])
    assert info.value.code == 0, capsys.readouterr().err
    for name in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl", "dataset.jsonl"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
