"""Feedback iterations (Private Evolution), a part of :class:`~fountain.frameworks.runner._Runner`:
an initial population, then per iteration a DP selection and variations of the selected
conversations."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fountain.errors import FountainError
from fountain.frameworks.edge_votes import edge_select, uses_edges
from fountain.frameworks.records import STATE_FILE
from fountain.generation.plan import DERIVATION, Task, prefix_lengths, task_id
from fountain.run.options import RunResult
from fountain.types import Sample

# Feedback with rank selection: the top ceil(S/2) conversations of a population of S each get
# two variations, so the population keeps its size while only the better half survives.
RANK_VARIATIONS = 2


class _FeedbackIterations:
    """The Feedback framework of :class:`~fountain.frameworks.runner._Runner` (a mixin: it uses the
    runner's engine rounds, state and rating)."""

    def _variation_tasks(self, iteration: int, selected: Sequence[str], samples: dict[str, Sample]) -> list[Task]:
        """Variations of the selected conversations: derivations along the spec's derivational
        directions, from a prefix shorter than the parent (so each variation rewrites its end)."""
        spec = self.effective
        gen = spec.generation
        directions = list(spec.derivational_directions)
        per_slot = RANK_VARIATIONS if self.plan.selection == "rank" else 1
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

        per_slot = RANK_VARIATIONS if self.plan.selection == "rank" else 1
        slots = max(1, math.ceil(size / per_slot))
        if vectors is None and not uses_edges(self):
            vectors = self._encode_synthetic(population)
        by_category: dict[str, list[int]] = {}
        for index, sample in enumerate(population):
            by_category.setdefault(sample.provenance.category, []).append(index)
        synthetic = {category: vectors[rows] for category, rows in by_category.items()} if vectors is not None else {}
        n_select = {
            category: max(1, round(slots * len(rows) / len(population))) for category, rows in by_category.items()
        }
        if uses_edges(self):  # the data owners' edges vote (fountain.frameworks.edge_votes)
            groups = {category: [population[r] for r in rows] for category, rows in by_category.items()}
            outcome = edge_select(self, iteration, groups, n_select)
            return self._selected_ids(outcome, by_category, population)
        self._spend(iteration)
        outcome = pe_select_detailed(
            self._private_embeddings(),
            synthetic,
            sigma=self.plan.privacy.sigma,
            n_select=n_select,
            k=self.plan.k,
            threshold_H=self.plan.threshold,
            selection=self.plan.selection,
            rng=self._rng(),
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

    async def _feedback(self) -> RunResult:
        plan = self.plan
        selected_before = sum(1 for e in self.state["rounds"] if e.get("round", 0) >= 1 and "selected" in e)
        self._open_ledger(plan.iterations - selected_before)
        samples: dict[str, Sample] = {}
        initial = self._round(0)
        if initial is None or not initial.get("complete"):
            result = await self._run_engine(self._engine(iteration=0))
            self.seeds_requested = result.counts.get("seeds_requested", 0)
            population, rejects, info = await self._dedup(result.samples)
            initial = {
                "round": 0,
                "seeds": self.seeds_requested,
                "generated": len(result.samples),
                "population": [s.id for s in population],
                "rejects": rejects,
                "dedup": info,
                "complete": True,
            }
            self.state["rounds"] = [e for e in self.state["rounds"] if e.get("round") != 0] + [initial]
            self._save_state()
        self.seeds_requested = int(initial.get("seeds") or 0)
        size = len(initial["population"])
        self.framework_rejects = list(initial["rejects"])
        samples = self._journal_samples()
        population_ids = list(initial["population"])
        self.partial = population_ids
        for t in range(1, plan.iterations + 1):
            entry = self._round(t) or {"round": t}
            if entry.get("complete"):
                population_ids = entry["population"]
                self.partial = population_ids
                self.framework_rejects += entry["rejects"]
                self.variations_planned += int(entry.get("variations") or 0)
                continue
            if "selected" not in entry:
                population = [samples[i] for i in population_ids if i in samples]
                if not population:
                    raise FountainError(
                        f"Feedback iteration {t} has no conversation to select from: the "
                        f"population of iteration {t - 1} is empty",
                        location=str(self.output_dir / STATE_FILE),
                        hint="every conversation was rejected; check rejects.jsonl, then "
                        "try another model, more --seeds-per-direction, or wider turn bounds",
                    )
                vectors = None if uses_edges(self) else await self._encode_async(population)
                selected, summary = self._select(t, population, size, vectors)
                entry.update({"selected": selected, "selection": summary})
                self.state["rounds"] = [e for e in self.state["rounds"] if e.get("round") != t] + [entry]
                self._save_state()
            tasks = self._variation_tasks(t, entry["selected"], samples)
            result = await self._run_engine(self._engine(seeds=[], extra=tasks, iteration=t))
            produced = {s.id: s for s in result.samples}
            made = [produced[task.id] for task in tasks if task.id in produced]
            population, rejects, info = await self._dedup(made)
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
            self._save_state()
            self.framework_rejects += rejects
            self.variations_planned += len(tasks)
            population_ids = entry["population"]
            self.partial = population_ids
            samples.update(produced)
        samples = self._journal_samples()
        self.info.update(
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
                    for e in sorted(self.state["rounds"], key=lambda e: e["round"])
                ],
            }
        )
        return self._finish([samples[i] for i in population_ids if i in samples])
