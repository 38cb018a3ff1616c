"""Gen and GenLLM: one engine round (seeds and their derivations), then dedup. GenLLM first asks
the model for a scenario and personas (:mod:`fountain.generation.enrich`, done by the round)."""

from __future__ import annotations

from collections.abc import Sequence

from fountain.frameworks.base import Framework
from fountain.types import Sample


class Gen(Framework):
    name = "Gen"

    async def run(self) -> Sequence[Sample]:
        ctx = self.ctx
        result = await ctx.run_round()
        ctx.seeds_requested = result.counts.get("seeds_requested", 0)
        kept, rejects, info = await self.rating.dedup_last(result.samples)
        ctx.framework_rejects = rejects
        ctx.info["dedup"] = info
        return kept


class GenLLM(Gen):
    name = "GenLLM"
    enriches = True
