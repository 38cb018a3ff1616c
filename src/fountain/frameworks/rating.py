"""Rating in a framework run: dedup (exact, MinHash, then embeddings of the survivors), the Real
Filter fitted on the private embeddings, and the source of DP noise."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fountain.frameworks.embeddings import Embeddings
from fountain.frameworks.records import dedup_view, family_keys, reject_record
from fountain.types import Sample

if TYPE_CHECKING:  # pragma: no cover
    from fountain.frameworks.context import RunContext


class Rating:
    """Dedup and raters of one run. ``noise_rng`` is for tests only: DP noise from a known seed
    carries no privacy guarantee."""

    def __init__(self, ctx: RunContext, embeddings: Embeddings, noise_rng: Any = None):
        self.ctx = ctx
        self.embeddings = embeddings
        self.noise_rng = noise_rng
        self._rf: Any = None

    def _start(self, samples: Sequence[Sample], earlier: Sequence[Sample]) -> dict[str, Any]:
        """The exact and MinHash stages of a dedup; the embedding stage follows in _dedup_end with
        vectors of the survivors only (no embedder is loaded when fewer than 2 survive)."""
        from fountain.embed.embedder import conversation_text
        from fountain.raters.dedup import DedupSettings, dedup

        spec_settings = self.ctx.source.raters.dedup
        skipped: dict[str, str] = {}
        minhash = spec_settings.minhash_threshold is not None
        if minhash and importlib.util.find_spec("datasketch") is None:
            minhash = False
            skipped["minhash"] = "datasketch is not installed: pip install 'fountain[embed]'"
        embedding = spec_settings.embedding_threshold is not None and self.embeddings.missing is None
        if spec_settings.embedding_threshold is not None and self.embeddings.missing is not None:
            skipped["embedding"] = f"{self.embeddings.missing} is not installed: pip install 'fountain[embed]'"
        settings = DedupSettings(
            exact=spec_settings.exact,
            minhash=minhash,
            minhash_threshold=spec_settings.minhash_threshold or 0.9,
            embedding=False,
            embedding_threshold=spec_settings.embedding_threshold or 0.9,
        )
        everything = list(earlier) + list(samples)
        views = [dedup_view(s) for s in everything]
        families = family_keys(everything)
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
            "families": [families[i] for i in alive],
            "family_threshold": settings.family_threshold,
            "candidates": [views[i] for i in alive] if embedding and len(alive) >= 2 else [],
        }

    def _end(self, work: dict[str, Any], vectors: Any) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        from fountain.raters.dedup import DuplicateFinding, embedding_duplicates

        findings = list(work["findings"])
        stages_run = list(work["stages_run"])
        if work["embedding"]:
            stages_run.append("embedding")
            if vectors is not None:
                alive = work["alive"]
                found = embedding_duplicates(
                    vectors,
                    range(len(alive)),
                    work["threshold"],
                    work["neighbours"],
                    families=work["families"],
                    family_threshold=work["family_threshold"],
                )
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
            if note not in self.ctx.warnings:
                self.ctx.warnings.append(note)
        info = {
            "stages_run": stages_run,
            "stages_skipped": work["skipped"],
            "dropped": dict(Counter(f.method for f in findings if f.index >= offset)),
        }
        return survivors, rejects, info

    async def dedup(
        self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        """Drop duplicates among ``samples`` and of ``earlier`` (kept before them)."""
        if not self.ctx.source.raters.dedup.enabled:
            return list(samples), [], {"enabled": False}
        from fountain.aio import in_daemon_thread

        # Off the loop thread (exact and MinHash stages): a Ctrl-C is taken at once.
        work = await in_daemon_thread(self._start, samples, earlier)
        vectors = await self.embeddings.encode_async(work["candidates"]) if work["candidates"] else None
        return self._end(work, vectors)

    async def dedup_last(
        self, samples: Sequence[Sample]
    ) -> tuple[Sequence[Sample], list[dict[str, Any]], dict[str, Any]]:
        """:meth:`dedup` of the run's last round, whose samples go straight to the export: with
        dedup off they come back as they are (a round's
        :class:`~fountain.run.samples.ResultSamples` are read from the journals once, by the
        export, never all held in memory)."""
        if not self.ctx.source.raters.dedup.enabled:
            return samples, [], {"enabled": False}
        return await self.dedup(samples)

    def dedup_sync(
        self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        """:meth:`dedup` outside the event loop (salvaging a stopped round)."""
        if not self.ctx.source.raters.dedup.enabled:
            return list(samples), [], {"enabled": False}
        work = self._start(samples, earlier)
        vectors = self.embeddings.encode(work["candidates"]) if work["candidates"] else None
        return self._end(work, vectors)

    def real_filter(self) -> Any:
        if self._rf is None:
            from fountain.raters.rf import RealFilter, RFSettings

            settings = RFSettings(k=self.ctx.plan.k, percentile=self.ctx.source.raters.rf_percentile)
            self._rf = RealFilter.fit(self.embeddings.private(), settings)
            self.ctx.info["rf"] = self._rf.calibration()
        return self._rf

    def rng(self) -> Any:
        if self.noise_rng is None:
            import numpy as np

            # Fresh OS entropy: DP noise must never follow from a seed someone else could know
            # (--seed makes the model reproducible, never the noise).
            self.noise_rng = np.random.default_rng()
        return self.noise_rng
