"""The embeddings of a framework run: synthetic conversations through a persisted cache
(``embeddings.sqlite``), private ones in memory only, and the embedder loaded once, lazily."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fountain.frameworks.records import EMBEDDINGS_FILE, _embed_extra_missing

if TYPE_CHECKING:  # pragma: no cover
    from fountain.frameworks.context import RunContext

# Conversations embedded per call: each call's vectors are persisted (embeddings.sqlite) before the
# next starts, and the event loop gets a turn in between, so Ctrl-C stops a long dedup promptly.
EMBED_BATCH = 128


class Embeddings:
    """The run's embedder. ``given``: an embedder passed by the caller (tests, notebooks)."""

    def __init__(self, ctx: RunContext, given: Any = None):
        self.ctx = ctx
        self.given = given
        self.embedder: Any = None  # the raw embedder (private data goes through this one only)
        self.synthetic: Any = None  # cached (persisted) embeddings of synthetic conversations
        self.missing: str | None = None  # the embed extra's missing package (see prepare)
        self._private: dict[str, Any] | None = None

    def prepare(self, needed_by_rater: bool, embedding_dedup: bool) -> None:
        """Check, before any token is spent, that the embedder can be had; load it now only when it
        is certainly needed (a rater) or was named (--embedder: its errors come first). The default
        one for dedup loads lazily, once the embedding stage has 2 or more candidates left."""
        from fountain.embed import BUNDLED_ALIASES

        name = self.ctx.plan.embedder
        if not (needed_by_rater or embedding_dedup) or self.given is not None:
            return
        missing = _embed_extra_missing(name)
        if missing and not needed_by_rater:
            # Without the embed extra the other dedup stages still run (dedup says so).
            self.missing = missing
            return
        if needed_by_rater or name not in BUNDLED_ALIASES:
            self.load()

    def load(self) -> None:
        """Load the embedder (once) and wrap it in the persisted cache for synthetic texts."""
        from fountain.embed.embedder import CachedEmbedder

        if self.embedder is not None:
            return
        embedder = self.given
        if embedder is None:
            from fountain.embed.embedder import load_embedder

            embedder = load_embedder(self.ctx.plan.embedder)
        while isinstance(embedder, CachedEmbedder):  # private texts must never meet a persisted cache
            embedder = embedder.embedder
        self.embedder = embedder
        if self.ctx.options.budget.no_cache:
            self.synthetic = CachedEmbedder(embedder)
        else:
            self.synthetic = CachedEmbedder(embedder, self.ctx.output_dir / EMBEDDINGS_FILE, persist=True)

    def close(self) -> None:
        if self.synthetic is not None:
            self.synthetic.close()

    def _batches(self, conversations: Sequence[Any]) -> Iterator[Any]:
        """Vectors of synthetic conversations (Samples or turn sequences), EMBED_BATCH at a time:
        each batch is in embeddings.sqlite before the next one starts."""
        from fountain.embed.embedder import encode_conversations

        self.load()
        items = list(conversations)
        for start in range(0, len(items), EMBED_BATCH):
            yield encode_conversations(self.synthetic, items[start : start + EMBED_BATCH])

    @staticmethod
    def _stack(parts: list[Any], dim: int) -> Any:
        import numpy as np

        return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)

    async def encode_async(self, conversations: Sequence[Any]) -> Any:
        """:meth:`encode` with the embedder's load and each batch in a daemon thread, so a Ctrl-C
        (asyncio cancels the main task) stops the run at once, not after the load or the batch in
        progress."""
        from fountain.aio import in_daemon_thread
        from fountain.embed.embedder import encode_conversations

        await in_daemon_thread(self.load)
        items = list(conversations)
        parts = []
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start : start + EMBED_BATCH]
            parts.append(await in_daemon_thread(encode_conversations, self.synthetic, batch))
        return self._stack(parts, self.synthetic.dim)

    def encode(self, conversations: Sequence[Any]) -> Any:
        return self._stack(list(self._batches(conversations)), self.synthetic.dim)

    def private(self) -> dict[str, Any]:
        """Private conversations embedded in memory (no cache), grouped by category."""
        if self._private is None:
            from fountain.embed.embedder import encode_conversations
            from fountain.raters.realdata import group_by_category

            groups = group_by_category(self.ctx.plan.real or [])
            self.load()
            self._private = {
                category: encode_conversations(self.embedder, [c.turns for c in items])
                for category, items in groups.items()
            }
        return self._private
