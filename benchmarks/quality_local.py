"""Issue 14's done-when on the default local run: exported conversations and, of their turns, the
cut-off, echo and user-as-assistant rates (the figures ``fountain report`` prints in its Quality
table, computed by the same code: :func:`fountain.report.quality.quality_section`).

Each spec folder is run as README command 1 runs a sample (default local model, SmolLM2-135M,
turn by turn), one after the other, into a fresh output folder; then the dataset is measured.

    PYTHONPATH=src python benchmarks/quality_local.py                       # the three samples
    PYTHONPATH=src python benchmarks/quality_local.py samples/tech_support my_spec --json out.json

Target (issue 14): at least 5 exported conversations per spec, and at most 5% of their turns cut
off, at most 5% echoing an earlier turn, at most 5% of user turns speaking as the assistant.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLES = ("samples/marriage_counsel", "samples/tech_support", "samples/language_tutoring")
LIMITS = {"cut_off_rate": 0.05, "echo_rate": 0.05, "user_as_assistant_rate": 0.05}
MIN_EXPORTED = 5


def measure(folder: str | Path, output: Path, *, seed: int | None = None) -> dict[str, Any]:
    """Run ``folder`` with the default local model into ``output`` and measure its dataset."""
    from fountain.frameworks import run_framework
    from fountain.report.quality import quality_section
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec

    spec = load_spec(Path(folder))
    started = time.perf_counter()
    result = run_framework(spec, RunOptions(output=output, quiet=True, seed=seed))
    elapsed = time.perf_counter() - started
    conversations = []
    dataset = output / "dataset.jsonl"
    for line in dataset.read_text(encoding="utf-8").splitlines() if dataset.exists() else ():
        if line.strip():
            record = json.loads(line)
            conversations.append([(m["role"], m["content"]) for m in record["messages"]])
    quality = quality_section(
        conversations, diagram=spec.diagram, user_role=spec.user_role, assistant_role=spec.assistant_role
    )
    figures = quality["figures"]
    manifest = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest.get("counts", {})
    planned = spec.planned_seed_calls() + spec.max_derivation_calls()
    row = {
        "spec": str(folder),
        "planned": planned,
        "exported": len(conversations),
        "rejected": counts.get("rejected", {}),
        "utterance_rejects": counts.get("utterance_rejects", {}),
        "seconds": round(elapsed, 1),
        "requests": result.counts.get("requests") if isinstance(result.counts, dict) else None,
        **{k: figures.get(k) for k in (*LIMITS, "placeholder_rate", "grounded_rate", "agreement_rate")},
    }
    row["meets_target"] = row["exported"] >= MIN_EXPORTED and all(
        figures.get(k) is not None and figures[k] <= limit for k, limit in LIMITS.items()
    )
    return row


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", default=list(SAMPLES), help="spec folders (default: the three samples)")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default: none, as README command 1)")
    parser.add_argument("--keep", type=Path, default=None, help="write the outputs under this folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for folder in args.folders:
            row = measure(folder, root / Path(folder).name, seed=args.seed)
            rows.append(row)
            print(
                f"{row['spec']:32} exported {row['exported']}/{row['planned']}  cut-off {_pct(row['cut_off_rate'])}"
                f"  echo {_pct(row['echo_rate'])}  user-as-assistant {_pct(row['user_as_assistant_rate'])}"
                f"  grounded {_pct(row['grounded_rate'])}  agreement {_pct(row['agreement_rate'])}  {row['seconds']}s  "
                f"{'MEETS' if row['meets_target'] else 'MISSES'} the target",
                flush=True,
            )
            print(f"    rejected {row['rejected']}  utterances asked again {row['utterance_rejects']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
