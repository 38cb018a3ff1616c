"""Rating in a framework run, a part of :class:`~fountain.frameworks.runner._Runner`: dedup, the
embeddings of synthetic (persisted) and private (in memory only) conversations, the RF and PE
raters' inputs, and the privacy accounting of PE."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fountain.errors import PrivacyBudgetError
from fountain.frameworks.records import dedup_view, reject_record
from fountain.types import Sample

# Conversations embedded per call: each call's vectors are persisted (embeddings.sqlite) before the
# next starts, and the event loop gets a turn in between, so Ctrl-C stops a long dedup promptly.
EMBED_BATCH = 128


class _Rating:
    """Dedup, embeddings, raters and the privacy ledger of :class:`~fountain.frameworks.runner._Runner`
    (a mixin: it uses the runner's plan, state and output folder)."""

    def _dedup_start(self, samples: Sequence[Sample], earlier: Sequence[Sample]) -> dict[str, Any]:
        """The exact and MinHash stages of a dedup; the embedding stage follows in _dedup_end with
        vectors of the survivors only (no embedder is loaded when fewer than 2 survive)."""
        from fountain.embed.embedder import conversation_text
        from fountain.raters.dedup import DedupSettings, dedup

        spec_settings = self.source.raters.dedup
        skipped: dict[str, str] = {}
        minhash = spec_settings.minhash_threshold is not None
        if minhash and importlib.util.find_spec("datasketch") is None:
            minhash = False
            skipped["minhash"] = "datasketch is not installed: pip install 'fountain[embed]'"
        embedding = spec_settings.embedding_threshold is not None and self.embed_missing is None
        if spec_settings.embedding_threshold is not None and self.embed_missing is not None:
            skipped["embedding"] = f"{self.embed_missing} is not installed: pip install 'fountain[embed]'"
        settings = DedupSettings(
            exact=spec_settings.exact,
            minhash=minhash,
            minhash_threshold=spec_settings.minhash_threshold or 0.9,
            embedding=False,
            embedding_threshold=spec_settings.embedding_threshold or 0.9,
        )
        everything = list(earlier) + list(samples)
        views = [dedup_view(s) for s in everything]
        findings = dedup([conversation_text(v) for v in views], settings=settings)
        dropped = findings.dropped
        alive = [i for i in range(len(everything)) if i not in dropped]
        return {
            "samples": list(samples),
            "everything": everything,
            "offset": len(earlier),
            "findings": list(findings),
            "stages_run": list(findings.stages_run),
            "skipped": {**{k: v for k, v in findings.stages_skipped.items() if v != "disabled"}, **skipped},
            "embedding": embedding,
            "threshold": settings.embedding_threshold,
            "neighbours": settings.neighbours,
            "alive": alive,
            "candidates": [views[i] for i in alive] if embedding and len(alive) >= 2 else [],
        }

    def _dedup_end(
        self, work: dict[str, Any], vectors: Any
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        from fountain.raters.dedup import DuplicateFinding, embedding_duplicates

        findings = list(work["findings"])
        stages_run = list(work["stages_run"])
        if work["embedding"]:
            stages_run.append("embedding")
            if vectors is not None:
                alive = work["alive"]
                found = embedding_duplicates(vectors, range(len(alive)), work["threshold"], work["neighbours"])
                findings += [
                    DuplicateFinding(alive[f.index], alive[f.duplicate_of_index], f.method, f.score) for f in found
                ]
        findings.sort(key=lambda finding: finding.index)
        everything, offset = work["everything"], work["offset"]
        rejects = []
        dropped: set[int] = set()
        for finding in findings:
            if finding.index < offset:
                continue  # an earlier round's kept sample stays kept
            dropped.add(finding.index)
            kept = everything[finding.duplicate_of_index]
            rejects.append(
                reject_record(
                    everything[finding.index],
                    finding.reason,
                    f"duplicates {kept.id} ({finding.method}, score {finding.score:.3f})",
                    keep_text=True,
                    duplicate_of=kept.id,
                    score=round(float(finding.score), 4),
                )
            )
        survivors = [s for i, s in enumerate(work["samples"]) if i + offset not in dropped]
        for stage, why in work["skipped"].items():
            note = f"dedup: {stage} stage skipped ({why})"
            if note not in self.warnings:
                self.warnings.append(note)
        info = {
            "stages_run": stages_run,
            "stages_skipped": work["skipped"],
            "dropped": dict(Counter(f.method for f in findings if f.index >= offset)),
        }
        return survivors, rejects, info

    async def _dedup(
        self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        """Drop duplicates among ``samples`` and of ``earlier`` (kept before them)."""
        if not self.source.raters.dedup.enabled:
            return list(samples), [], {"enabled": False}
        from fountain.aio import in_daemon_thread

        # Off the loop thread (exact and MinHash stages): a Ctrl-C is taken at once.
        work = await in_daemon_thread(self._dedup_start, samples, earlier)
        vectors = await self._encode_async(work["candidates"]) if work["candidates"] else None
        return self._dedup_end(work, vectors)

    def _dedup_sync(
        self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        """:meth:`_dedup` outside the event loop (salvaging a stopped round)."""
        if not self.source.raters.dedup.enabled:
            return list(samples), [], {"enabled": False}
        work = self._dedup_start(samples, earlier)
        vectors = self._encode_synthetic(work["candidates"]) if work["candidates"] else None
        return self._dedup_end(work, vectors)

    def _encode_batches(self, conversations: Sequence[Any]):
        """Vectors of synthetic conversations (Samples or turn sequences), EMBED_BATCH at a time:
        each batch is in embeddings.sqlite before the next one starts."""
        from fountain.embed.embedder import encode_conversations

        self._load_embedder()
        items = list(conversations)
        for start in range(0, len(items), EMBED_BATCH):
            yield encode_conversations(self.synthetic_embedder, items[start : start + EMBED_BATCH])

    @staticmethod
    def _stack(parts: list[Any], dim: int):
        import numpy as np

        return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)

    async def _encode_async(self, conversations: Sequence[Any]):
        """:meth:`_encode_synthetic` with the embedder's load and each batch in a daemon thread,
        so a Ctrl-C (asyncio cancels the main task) stops the run at once, not after the load
        or the batch in progress."""
        from fountain.aio import in_daemon_thread
        from fountain.embed.embedder import encode_conversations

        await in_daemon_thread(self._load_embedder)
        items = list(conversations)
        parts = []
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start : start + EMBED_BATCH]
            parts.append(await in_daemon_thread(encode_conversations, self.synthetic_embedder, batch))
        return self._stack(parts, self.synthetic_embedder.dim)

    def _encode_synthetic(self, samples: Sequence[Any]):
        parts = list(self._encode_batches(samples))
        return self._stack(parts, self.synthetic_embedder.dim)

    def _private_embeddings(self) -> dict[str, Any]:
        """Private conversations embedded in memory (no cache), grouped by category."""
        if self._private is None:
            from fountain.embed.embedder import encode_conversations
            from fountain.raters.realdata import group_by_category

            groups = group_by_category(self.plan.real or [])
            self._load_embedder()
            self._private = {
                category: encode_conversations(self.embedder, [c.turns for c in items])
                for category, items in groups.items()
            }
        return self._private

    def _real_filter(self):
        if self._rf is None:
            from fountain.raters.rf import RealFilter, RFSettings

            settings = RFSettings(k=self.plan.k, percentile=self.source.raters.rf_percentile)
            self._rf = RealFilter.fit(self._private_embeddings(), settings)
            self.info["rf"] = self._rf.calibration()
        return self._rf

    def _rng(self):
        if self.noise_rng is None:
            import numpy as np

            # Fresh OS entropy: DP noise must never follow from a seed someone else could know
            # (--seed makes the model reproducible, never the noise).
            self.noise_rng = np.random.default_rng()
        return self.noise_rng

    # --- privacy accounting ----------------------------------------------------------------------

    def _open_ledger(self, releases_left: int) -> None:
        """Rebuild the ledger from the state and refuse a plan that would end over budget."""
        from fountain.raters.privacy import PrivacyLedger

        privacy = self.plan.privacy
        ledger = PrivacyLedger(delta=privacy.delta, epsilon_budget=privacy.epsilon_budget)
        for entry in self.state.get("ledger", []):
            ledger.record(float(entry["sigma"]))
        preview = PrivacyLedger(delta=privacy.delta)
        for entry in ledger.entries:
            preview.record(entry.sigma)
        for _ in range(max(0, releases_left)):
            preview.record(privacy.sigma)
        if preview.epsilon > privacy.epsilon_budget * (1 + 1e-9):
            raise PrivacyBudgetError(
                f"the plan would spend epsilon = {preview.epsilon:.4g} in all ({len(ledger.entries)} "
                f"iteration(s) already spent, {releases_left} to go with sigma = {privacy.sigma:.4g}), "
                f"more than the budget epsilon = {privacy.epsilon_budget:.4g}",
                hint="an iteration was interrupted after its noise was drawn and must not be drawn again "
                "within this budget; start a new run with --output, or raise --epsilon"
                if ledger.entries
                else "use a larger --sigma, fewer --iterations or a larger --epsilon",
            )
        self.ledger = ledger
        self._write_privacy()

    def _spend(self, iteration: int) -> None:
        """Charge one release to the ledger and persist it BEFORE the noisy histogram is drawn:
        a crash in between costs budget instead of drawing fresh noise for free."""
        entry = self.ledger.record(self.plan.privacy.sigma)
        self.state.setdefault("ledger", []).append({"iteration": iteration, "sigma": entry.sigma})
        self._save_state()
        self._write_privacy()

    def privacy_section(self) -> dict[str, Any] | None:
        if self.ledger is None:
            return None
        data = self.ledger.to_dict()
        entries = data.pop("iterations")
        iterations = [e.get("iteration") for e in self.state.get("ledger", [])]
        for entry, number in zip(entries, iterations):
            entry["iteration"] = number  # the Feedback iteration / Filter round that spent it
        threshold = self.plan.threshold
        if threshold is None:
            from fountain.raters.pe import default_threshold

            threshold = default_threshold(self.plan.privacy.sigma)
        return {
            "rater": "PE",
            **data,
            **self.plan.privacy.to_dict(),
            "k": self.plan.k,
            "threshold_H": threshold,
            "selection": self.plan.selection,
            "ledger": entries,
        }

    def _write_privacy(self) -> None:
        from fountain.run.manifest import Manifest

        manifest = Manifest.read(self.output_dir)
        if manifest is None:
            return  # the first engine round writes the manifest; privacy follows right after
        manifest.privacy = self.privacy_section() or manifest.privacy
        manifest.write(self.output_dir)
