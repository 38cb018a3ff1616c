"""Time ``fountain report`` on a synthetic output folder of 10,000 conversations, without embedder.

    python benchmarks/bench_report.py [--conversations 10000] [--html] [--keep DIR]

Writes an output folder (seeds.jsonl, derivations.jsonl, dataset.jsonl, rejects.jsonl,
manifest.json) of random conversations in a temporary folder, then times ``build_report`` (all
metrics except the embedding ones), the terminal rendering and, with ``--html``, the HTML page.
The target is under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

VOCABULARY = [f"w{i}" for i in range(6000)] + (
    [
        "the",
        "a",
        "to",
        "and",
        "of",
        "i",
        "you",
        "it",
        "is",
        "that",
        "my",
        "we",
        "in",
        "for",
        "with",
        "this",
        "what",
        "how",
        "can",
        "should",
        "feel",
        "about",
        "do",
        "not",
        "be",
        "have",
        "me",
        "your",
        "our",
        "but",
        "so",
        "just",
        "talk",
        "help",
        "try",
        "week",
        "partner",
        "money",
    ]
)


def sentence(rng: random.Random, words: int) -> str:
    # Zipf-like choice: a few words are frequent, most are rare, as in real text.
    chosen = [VOCABULARY[min(int(rng.paretovariate(1.1)) - 1, len(VOCABULARY) - 1)] for _ in range(words)]
    return " ".join(chosen).capitalize() + rng.choice([".", "?", "!"])


def write_folder(folder: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    directions = ["general", "diverse", "in-depth", "in-breadth", "concretize"]
    seeds, derivations, dataset = [], [], []
    for index in range(count):
        kind = "seed" if index % 4 == 0 else "derivation"
        messages = []
        for _ in range(rng.randint(2, 6)):
            messages.append(
                {
                    "role": "user",
                    "content": " ".join(sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 3))),
                }
            )
            messages.append(
                {
                    "role": "assistant",
                    "content": " ".join(sentence(rng, rng.randint(8, 18)) for _ in range(rng.randint(2, 6))),
                }
            )
        metadata = {
            "id": f"s{index}",
            "kind": kind,
            "direction": rng.choice(directions),
            "category": "bench",
            "type": "conversation",
            "parent_id": None,
            "prefix_turns": 0,
            "provider": "fake",
            "model": "fake",
            "prompt_hash": "x",
            "usage": {"prompt_tokens": 300, "completion_tokens": 200},
            "spec_fingerprint": "f",
            "persona": None,
            "iteration": 0,
            "attempt": rng.choice([0, 0, 0, 1]),
        }
        record = {"messages": messages, "metadata": metadata}
        (seeds if kind == "seed" else derivations).append(record)
        dataset.append(record)
    for name, records in (("seeds.jsonl", seeds), ("derivations.jsonl", derivations), ("dataset.jsonl", dataset)):
        with open(folder / name, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
    with open(folder / "rejects.jsonl", "w", encoding="utf-8") as handle:
        for index in range(count // 20):
            handle.write(
                json.dumps(
                    {
                        "id": f"r{index}",
                        "kind": "seed",
                        "direction": "general",
                        "reason": rng.choice(["invalid_json", "schema", "duplicate:minhash"]),
                        "detail": "",
                        "raw": "",
                        "attempts": 3,
                        "metadata": {},
                    }
                )
                + "\n"
            )
    manifest = {
        "format": 1,
        "status": "completed",
        "provider": {"provider": "fake", "model": "fake"},
        "counts": {
            "seeds_requested": count // 4,
            "derivations_planned": count - count // 4,
            "accepted": {"seed": len(seeds), "derivation": len(derivations)},
        },
        "usage": {"prompt_tokens": 300 * count, "completion_tokens": 200 * count},
        "cost_usd": 0.0,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--html", action="store_true", help="also time the HTML page")
    parser.add_argument("--keep", type=Path, help="write the folder here instead of a temporary one")
    args = parser.parse_args(argv)

    from rich.console import Console

    from fountain.report import build_report
    from fountain.report.terminal import render

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_folder(folder, args.conversations)
        print(f"wrote {args.conversations:,} conversations in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        report = build_report(folder, embed=False)
        built = time.perf_counter() - started
        render(report, Console(file=io.StringIO(), width=140))
        total = time.perf_counter() - started
        print(f"build_report (no embedder): {built:.1f} s; with terminal rendering: {total:.1f} s")
        print("sections (s):", json.dumps(report.figures["timings_s"]))
        if args.html:
            from fountain.report.html import write_html

            started = time.perf_counter()
            write_html(report, folder / "report.html")
            print(f"HTML page: {time.perf_counter() - started:.1f} s")
            total += time.perf_counter() - started
        print(f"report on {args.conversations:,} conversations: {total:.1f} s (target: under 60 s on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
