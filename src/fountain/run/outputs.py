"""The names of the files in an output folder, in one place."""

from __future__ import annotations

SEEDS_FILE, DERIVATIONS_FILE, REJECTS_FILE = "seeds.jsonl", "derivations.jsonl", "rejects.jsonl"
JOURNALS = (SEEDS_FILE, DERIVATIONS_FILE, REJECTS_FILE)  # positions in this tuple name a journal
SEEDS, DERIVATIONS, REJECTS = range(3)
MANIFEST_FILE = "manifest.json"
CACHE_FILE = "cache.sqlite"
LOCK_FILE = ".lock"
DATASET_FILES = {"messages": "dataset.jsonl", "sharegpt": "dataset.jsonl", "janus": "outputs.json"}
