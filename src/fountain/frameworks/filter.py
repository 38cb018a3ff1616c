"""Filter: rounds of generate -> dedup -> rate (RF, PE or dedup only), accumulating the kept
conversations until the target or the last round."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fountain.frameworks.base import Framework
from fountain.frameworks.records import reject_record
from fountain.generation.plan import SEED, Task, seed_tasks
from fountain.types import Sample


class Filter(Framework):
    name = "Filter"
    rounds = True

    def _seed_plan(self, round_number: int) -> list[Task]:
        """Seed tasks of Filter round ``round_number`` (1-based): fresh sample indices per round,
        so their ids (and cache keys) differ from every other round's."""
        spec = self.ctx.effective
        personas = tuple(spec.personas)
        per_direction = spec.generation.seeds_per_direction * max(1, len(personas))
        return seed_tasks(
            spec.seed_directions,
            spec.generation.seeds_per_direction,
            personas,
            first_index=(round_number - 1) * per_direction,
        )

    async def run(self) -> list[Sample]:
        plan = self.ctx.plan
        if plan.rater == "PE":
            done = sum(1 for entry in self.ctx.state["rounds"] if entry.get("complete"))
            self.privacy.open(plan.iterations - done)
        accepted: list[str] = []
        samples: dict[str, Sample] | None = None
        rounds_run = 0
        for number in range(1, plan.iterations + 1):
            if plan.target and len(accepted) >= plan.target:
                break
            rounds_run = number
            recorded = self.ctx.round(number)
            if recorded is not None and recorded.get("complete"):
                accepted += recorded["accepted"]
                self.ctx.framework_rejects += recorded["rejects"]
                self.ctx.partial = list(accepted)
                continue
            seeds = self._seed_plan(number)
            result = await self.ctx.run_round(seeds=seeds, iteration=number)
            samples = {s.id: s for s in result.samples}
            seed_ids = {t.id for t in seeds}
            batch = [
                s
                for s in result.samples
                if s.id in seed_ids or (s.provenance.kind != SEED and s.provenance.parent_id in seed_ids)
            ]
            earlier = [samples[i] for i in accepted if i in samples]
            kept, rejects, dedup_info = await self.rating.dedup(batch, earlier)
            vectors = await self.rating.embeddings.encode_async(kept) if plan.rater and kept else None
            kept, rated, rating = self._rate_batch(kept, number, vectors)
            entry: dict[str, Any] = {
                "round": number,
                "seeds": len(seeds),
                "generated": len(batch),
                "accepted": [s.id for s in kept],
                "rejects": rejects + rated,
                "dedup": dedup_info,
                "rating": rating,
                "complete": True,
            }
            self.ctx.record_round(entry)
            accepted += entry["accepted"]
            self.ctx.framework_rejects += entry["rejects"]
            self.ctx.partial = list(accepted)
        per_round = len(self._seed_plan(1))
        self.ctx.seeds_requested = per_round * rounds_run
        samples = self.ctx.journal_samples()
        self.ctx.info.update(
            {
                "rounds": {"max": plan.iterations, "run": rounds_run},
                "target": plan.target,
                "per_round": [
                    {k: e.get(k) for k in ("round", "seeds", "generated", "dedup", "rating")}
                    | {"accepted": len(e.get("accepted", []))}
                    for e in sorted(self.ctx.state["rounds"], key=lambda e: e["round"])
                ],
            }
        )
        if plan.target and len(accepted) < plan.target:
            self.ctx.warnings.append(
                f"Filter: {len(accepted)} conversation(s) kept after {rounds_run} round(s), "
                f"short of the target {plan.target}; raise --iterations to go on"
            )
        return [samples[i] for i in accepted if i in samples]

    def _rate_batch(
        self, batch: list[Sample], number: int, vectors: Any = None
    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        rater = self.ctx.plan.rater
        if rater is None or not batch:
            return batch, [], {"rater": rater, "rated": len(batch)}
        if vectors is None:
            vectors = self.rating.embeddings.encode(batch)
        categories = [s.provenance.category for s in batch]
        if rater == "RF":
            decisions = self.rating.real_filter().rate(vectors, categories)
            kept = [s for s, d in zip(batch, decisions) if d.keep]
            rejects = [
                reject_record(
                    s, d.reason, f"Real Filter: {d.reason.split(':', 1)[1].replace('_', ' ')}", scores=d.detail()
                )
                for s, d in zip(batch, decisions)
                if not d.keep
            ]
            return (
                kept,
                rejects,
                {"rater": "RF", "rated": len(batch), "rejected": dict(Counter(r["reason"] for r in rejects))},
            )
        # PE as a filter: a conversation is kept when its noisy vote count passes the threshold.
        import numpy as np

        from fountain.raters.pe import default_threshold, dp_histogram

        sigma = self.privacy.plan.sigma
        threshold = self.ctx.plan.threshold if self.ctx.plan.threshold is not None else default_threshold(sigma)
        self.privacy.spend(number)
        private = self.rating.embeddings.private()
        keep = np.zeros(len(batch), dtype=bool)
        noisy = np.zeros(len(batch))
        by_category: dict[str, list[int]] = {}
        for index, category in enumerate(categories):
            by_category.setdefault(category, []).append(index)
        for category, rows in by_category.items():
            votes = private.get(category)
            if votes is None:
                votes = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            histogram = dp_histogram(
                votes, vectors[rows], k=self.ctx.plan.k, sigma=sigma, threshold_H=threshold, rng=self.rating.rng()
            )
            keep[rows] = histogram.clipped > 0
            noisy[rows] = histogram.noisy_counts  # DP output: may be written
        kept = [s for s, ok in zip(batch, keep) if ok]
        rejects = [
            reject_record(
                s,
                "pe:no_votes",
                f"noisy vote count {noisy[i]:.3f} is below the threshold H = {threshold:.3f}",
                noisy_votes=round(float(noisy[i]), 4),
            )
            for i, s in enumerate(batch)
            if not keep[i]
        ]
        return kept, rejects, {"rater": "PE", "rated": len(batch), "kept": len(kept), "threshold_H": threshold}
