"""The report's embeddings: the bundled embedder loaded lazily, the conversations encoded once and shared by the sections that need them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fountain.errors import FountainError
from fountain.report.load import Item

# --- embeddings ---------------------------------------------------------------------------------

if TYPE_CHECKING:  # pragma: no cover
    from fountain.report.build import _Skips


def encode_items(embedder: Any, items: Sequence[Item]) -> np.ndarray:
    """One vector per conversation (user and assistant turns, roles tagged; no system prompt).

    Through :func:`fountain.embed.embedder.encode_conversations` (long conversations are chunked, never
    cut) when the embedder is a fountain one; otherwise ``embedder.encode`` of the role-tagged text.
    """
    turns = [item.turns for item in items]
    try:
        from fountain.embed.embedder import conversation_text, encode_conversations
    except ImportError:
        texts = ["\n".join(f"User: {t.user}\nAssistant: {t.assistant}" for t in conv) for conv in turns]
        return np.asarray(embedder.encode(texts), dtype=np.float64)
    if getattr(embedder, "dim", None):
        return np.asarray(encode_conversations(embedder, turns), dtype=np.float64)
    return np.asarray(embedder.encode([conversation_text(conv) for conv in turns]), dtype=np.float64)


class _Embeddings:
    """Embeddings of the synthetic sample (and of the real sample), or the reason there are none."""

    def __init__(
        self,
        items: Sequence[Item],
        sample_index: list[int],
        real_items: list[Item] | None,
        rng: random.Random,
        enabled: bool,
        embedder: Any,
        skips: _Skips,
        sample: int,
    ):
        self.synthetic: np.ndarray | None = None
        self.real: np.ndarray | None = None
        self.sample_index = sample_index
        self.reason: str | None = None
        self.name: str | None = None
        if not enabled:
            self.reason = "--no-embed was given"
        elif embedder is None:
            embedder, self.reason = _load_default_embedder()
        if embedder is None:
            skips.add(
                "embedding metrics (mean pairwise distance, Fréchet, k-NN precision/recall, memorisation)",
                self.reason or "no embedder",
            )
            return
        self.name = str(getattr(embedder, "name", type(embedder).__name__))
        self.synthetic = encode_items(embedder, [items[i] for i in sample_index])
        if real_items is not None:
            chosen = sorted(rng.sample(range(len(real_items)), min(sample, len(real_items))))
            self.real = encode_items(embedder, [real_items[i] for i in chosen])


def _load_default_embedder() -> tuple[Any, str | None]:
    try:
        from fountain.embed.embedder import load_embedder
    except ImportError as error:
        return None, f"fountain.embed.embedder cannot be imported ({error}); install 'fountain[embed]'"
    try:
        return load_embedder(), None
    except FountainError as error:
        return None, error.message + (f" ({error.hint})" if error.hint else "")
