"""Feedback (Private Evolution): an initial population, then per iteration a DP selection of it
(the private conversations vote, noise is added, the privacy account is charged first) and
variations of the selected synthetic conversations, which form the next population."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fountain.errors import FountainError
from fountain.frameworks.base import Framework
from fountain.frameworks.edge_votes import edge_select, uses_edges
from fountain.frameworks.records import STATE_FILE
from fountain.generation.plan import DERIVATION, Task, prefix_lengths, task_id
from fountain.spec.directions import distinct_directions
from fountain.types import Sample

# Feedback with rank selection: the top ceil(S/2) conversations of a population of S each get
# two variations, so the population keeps its size while only the better half survives.
RANK_VARIATIONS = 2


class Feedback(Framework):
    name = "Feedback"
    rounds = True

    def _variation_tasks(self, iteration: int, selected: Sequence[str], samples: dict[str, Sample]) -> list[Task]:
        """Variations of the selected conversations: derivations along the spec's derivational
        directions, from a prefix shorter than the parent (so each variation rewrites its end)."""
        spec = self.ctx.effective
        gen = spec.generation
        directions = distinct_directions(spec.derivational_directions)  # aliases: one prompt
        per_slot = RANK_VARIATIONS if self.ctx.plan.selection == "rank" else 1
        seen: Counter = Counter()
        tasks = []
        for slot, parent_id in enumerate(selected):
            parent = samples[parent_id]
            occurrence = seen[parent_id]
            seen[parent_id] += 1
            n = len(parent.turns)
            prefixes = prefix_lengths(n, gen.max_prefix_turns, gen.type)
            shorter = [p for p in prefixes if p < n] or prefixes
            for offset in range(per_slot):
                j = occurrence * per_slot + offset
                direction = directions[j % len(directions)]
                prefix = shorter[j % len(shorter)]
                persona = parent.provenance.persona
                tid = task_id("variation", direction, j, parent_id, prefix, persona)
                # A distinct sample index per variation: siblings that share a prefix must not
                # share a cache key (they would get the same answer).
                index = int(tid[2:9], 16)
                tasks.append(
                    Task(tid, DERIVATION, direction, index, persona, parent_id, prefix, (iteration, slot, offset))
                )
        return tasks

    def _select(
        self, iteration: int, population: list[Sample], size: int, vectors: Any = None
    ) -> tuple[list[str], dict[str, Any]]:
        """The DP selection of one iteration (spends privacy first)."""
        from fountain.raters.pe import pe_select_detailed

        per_slot = RANK_VARIATIONS if self.ctx.plan.selection == "rank" else 1
        slots = max(1, math.ceil(size / per_slot))
        if vectors is None and not uses_edges(self.ctx.plan):
            vectors = self.rating.embeddings.encode(population)
        by_category: dict[str, list[int]] = {}
        for index, sample in enumerate(population):
            by_category.setdefault(sample.provenance.category, []).append(index)
        synthetic = {category: vectors[rows] for category, rows in by_category.items()} if vectors is not None else {}
        n_select = {
            category: max(1, round(slots * len(rows) / len(population))) for category, rows in by_category.items()
        }
        if uses_edges(self.ctx.plan):  # the data owners' edges vote (fountain.frameworks.edge_votes)
            groups = {category: [population[r] for r in rows] for category, rows in by_category.items()}
            outcome = edge_select(self.privacy, self.rating.rng(), iteration, groups, n_select)
            return self._selected_ids(outcome, by_category, population)
        self.privacy.spend(iteration)
        outcome = pe_select_detailed(
            self.rating.embeddings.private(),
            synthetic,
            sigma=self.privacy.plan.sigma,
            n_select=n_select,
            k=self.ctx.plan.k,
            threshold_H=self.ctx.plan.threshold,
            selection=self.ctx.plan.selection,
            rng=self.rating.rng(),
        )
        return self._selected_ids(outcome, by_category, population)

    @staticmethod
    def _selected_ids(
        outcome: dict[str, Any], by_category: dict[str, list[int]], population: list[Sample]
    ) -> tuple[list[str], dict[str, Any]]:
        selected = []
        for category, chosen in outcome.items():
            rows = by_category[category]
            selected += [population[rows[int(i)]].id for i in chosen.indices]
        summary = {category: chosen.public_summary() for category, chosen in outcome.items()}
        return selected, summary

    async def run(self) -> list[Sample]:
        plan = self.ctx.plan
        selected_before = sum(1 for e in self.ctx.state["rounds"] if e.get("round", 0) >= 1 and "selected" in e)
        self.privacy.open(plan.iterations - selected_before)
        samples: dict[str, Sample] = {}
        initial = self.ctx.round(0)
        if initial is None or not initial.get("complete"):
            result = await self.ctx.run_round(iteration=0)
            self.ctx.seeds_requested = result.counts.get("seeds_requested", 0)
            population, rejects, info = await self.rating.dedup(result.samples)
            initial = {
                "round": 0,
                "seeds": self.ctx.seeds_requested,
                "generated": len(result.samples),
                "population": [s.id for s in population],
                "rejects": rejects,
                "dedup": info,
                "complete": True,
            }
            self.ctx.record_round(initial)
        self.ctx.seeds_requested = int(initial.get("seeds") or 0)
        size = len(initial["population"])
        self.ctx.framework_rejects = list(initial["rejects"])
        samples = self.ctx.journal_samples()
        population_ids = list(initial["population"])
        self.ctx.partial = population_ids
        for t in range(1, plan.iterations + 1):
            entry = self.ctx.round(t) or {"round": t}
            if entry.get("complete"):
                population_ids = entry["population"]
                self.ctx.partial = population_ids
                self.ctx.framework_rejects += entry["rejects"]
                self.ctx.variations_planned += int(entry.get("variations") or 0)
                continue
            if "selected" not in entry:
                population = [samples[i] for i in population_ids if i in samples]
                if not population:
                    raise FountainError(
                        f"Feedback iteration {t} has no conversation to select from: the "
                        f"population of iteration {t - 1} is empty",
                        location=str(self.ctx.output_dir / STATE_FILE),
                        hint="every conversation was rejected; check rejects.jsonl, then "
                        "try another model, more --seeds-per-direction, or wider turn bounds",
                    )
                vectors = None if uses_edges(self.ctx.plan) else await self.rating.embeddings.encode_async(population)
                selected, summary = self._select(t, population, size, vectors)
                entry.update({"selected": selected, "selection": summary})
                self.ctx.record_round(entry)
            tasks = self._variation_tasks(t, entry["selected"], samples)
            result = await self.ctx.run_round(seeds=[], extra=tasks, iteration=t)
            produced = {s.id: s for s in result.samples}
            made = [produced[task.id] for task in tasks if task.id in produced]
            population, rejects, info = await self.rating.dedup(made)
            entry.update(
                {
                    "variations": len(tasks),
                    "generated": len(made),
                    "population": [s.id for s in population],
                    "rejects": rejects,
                    "dedup": info,
                    "complete": True,
                }
            )
            self.ctx.save_state()
            self.ctx.framework_rejects += rejects
            self.ctx.variations_planned += len(tasks)
            population_ids = entry["population"]
            self.ctx.partial = population_ids
            samples.update(produced)
        samples = self.ctx.journal_samples()
        self.ctx.info.update(
            {
                "iterations": plan.iterations,
                "population_size": size,
                "selection": plan.selection,
                "variations_per_selected": RANK_VARIATIONS if plan.selection == "rank" else 1,
                "per_iteration": [
                    {
                        "iteration": e["round"],
                        "population": len(e.get("population", [])),
                        "variations": e.get("variations"),
                        "selection": e.get("selection"),
                        "dedup": e.get("dedup"),
                    }
                    for e in sorted(self.ctx.state["rounds"], key=lambda e: e["round"])
                ],
            }
        )
        return [samples[i] for i in population_ids if i in samples]
