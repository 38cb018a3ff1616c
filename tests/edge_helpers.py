"""Shared by the edge tests: private data with a canary, an edge config, a vote box."""

from __future__ import annotations

import secrets
from pathlib import Path

from fountain.edge.config import EdgeConfig
from fountain.edge.votes import VoteBox
from framework_helpers import HashEmbedder, marriage_real, real_record, write_real

CANARY = f"EDGE-CANARY-{secrets.token_hex(12)}"
TOKEN = "test-token-" + "x" * 20


def private_rows(n: int = 10) -> list[dict]:
    rows = marriage_real(n)
    rows.insert(
        2,
        real_record(
            f"My partner and I keep arguing about money ({CANARY}). What should we do?",
            f"Let us look at what money means to each of you ({CANARY}), then agree on one small step.",
        ),
    )
    return rows


def owner_files(root: Path, n: int = 10) -> Path:
    """The owner's private file in ``root/owner`` (the generator never sees this folder)."""
    (root / "owner").mkdir(parents=True, exist_ok=True)
    return write_real(root / "owner" / "private.jsonl", private_rows(n))


def edge_config(root: Path, **kw) -> EdgeConfig:
    kw.setdefault("epsilon", 4.0)
    kw.setdefault("iterations", 2)
    kw.setdefault("delta", 1e-3)
    kw.setdefault("token", TOKEN)
    real = kw.pop("real_data", None) or owner_files(root)
    return EdgeConfig(real_data=real, state_dir=root / "owner" / "state", **kw)


def open_box(root: Path, embedder=None, **kw) -> VoteBox:
    config = edge_config(root, **kw)
    return VoteBox.open(config, embedder=embedder or HashEmbedder())


def candidates(n: int, topic: str = "money") -> list[list[dict]]:
    return [
        [
            {"role": "user", "content": f"We argue about {topic} and other things ({i})."},
            {"role": "assistant", "content": f"Talk about what {topic} means to you both ({i})."},
        ]
        for i in range(n)
    ]
