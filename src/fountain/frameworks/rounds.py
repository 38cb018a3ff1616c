"""The engine of one framework round (seed and variation tasks, GenLLM enrichment, a manifest
that stays ``running`` until the framework's end), and the GenLLM prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from fountain.errors import FountainError, OutputError
from fountain.generation.enrich import Enrichment
from fountain.generation.plan import Task, seed_tasks
from fountain.run.engine import Engine, RunOptions


class RoundEngine(Engine):
    """The engine running one round: given seed tasks (None: the spec's), extra tasks (PE
    variations), the iteration number for provenance, and optionally the GenLLM enrichment."""

    def __init__(
        self,
        spec: Any,
        options: RunOptions,
        provider: Any,
        *,
        source_spec: Any,
        seeds: list[Task] | None = None,
        extra: Sequence[Task] = (),
        iteration: int = 0,
        enrich_personas: int | None = None,
        reuse_enrichment: bool = True,
    ):
        super().__init__(spec, options, provider, source_spec=source_spec)
        self._seeds = seeds
        self._extra = list(extra)
        self.iteration = iteration
        self.enrich_personas = enrich_personas
        self.reuse_enrichment = reuse_enrichment
        self.enrichment: Enrichment | None = None
        self.personas = tuple(spec.personas)

    def plan_seeds(self) -> list[Task]:
        if self._seeds is not None:
            return list(self._seeds)
        return seed_tasks(self.spec.seed_directions, self.gen.seeds_per_direction, self.personas)

    def plan_extra(self) -> list[Task]:
        return list(self._extra)

    async def prepare(self) -> None:
        if not self.enrich_personas:
            return
        try:
            await self._enrich()
        except BaseException as error:
            # prepare() runs before the engine's own clean-up is set up: record the stop here.
            cache = getattr(self.dispatcher, "cache", None)
            if cache is not None:
                cache.close()
            reason = error.message if isinstance(error, FountainError) else type(error).__name__
            self.manifest.end(
                "stopped" if isinstance(error, FountainError) else "failed", reason=reason, stats=self.stats
            )
            self.manifest.write(self.output_dir)
            raise

    async def _enrich(self) -> None:
        from fountain.frameworks.records import ENRICHMENT_FILE, load_enrichment, save_enrichment
        from fountain.generation.enrich import combine_personas, enrich_scene

        path = self.output_dir / ENRICHMENT_FILE
        found = load_enrichment(path) if self.reuse_enrichment else None
        if found is not None and found.requested != self.enrich_personas:
            raise OutputError(
                f"{ENRICHMENT_FILE} holds {found.requested} requested persona(s), this run "
                f"asks for {self.enrich_personas}",
                location=str(path),
                hint="run again with the same --personas to continue, or write the new run elsewhere with --output",
            )
        if found is None:
            found, warnings = await enrich_scene(
                self.spec,
                self.dispatcher,
                n_personas=self.enrich_personas or 0,
                seed=self.seed,
                max_retries=self.max_retries,
            )
            self.warnings.extend(warnings)
            save_enrichment(path, found)
        self.enrichment = found
        self.scenario = found.scenario
        self.personas = combine_personas(self.spec.personas, found.personas)
        if self.roleplay is not None:
            from fountain.generation.roleplay import SCENE_MAX_CHARS

            scene = found.scenario
            if len(scene) > SCENE_MAX_CHARS:
                scene = scene[:SCENE_MAX_CHARS].rsplit(" ", 1)[0] + " ..."
            # Every scene text of the role-play (one per side, or one for both) becomes the scenario.
            scenes = {f.name: scene for f in fields(self.roleplay) if "scene" in f.name}
            self.roleplay = replace(self.roleplay, **scenes)
        self.manifest.extra["enrichment"] = found.summary()


def genllm_spec(spec: Any) -> Any:
    """``spec`` whose Jinja prompts show the scenario and persona even when they do not use
    ``{{ scenario }}`` / ``{{ persona }}`` themselves (legacy prompts get them appended by
    :mod:`fountain.spec.prompts` already)."""
    if spec.template_style != "jinja":
        return spec
    from fountain.spec.prompts import template_variables_used

    changes = {}
    for key in ("initial_prompt", "derivational_prompt"):
        source = getattr(spec, key)
        used = template_variables_used(source)
        if "scenario" in used and "persona" in used:
            continue
        preamble = ""
        if "scenario" not in used:
            preamble += "{% if scenario %}The scenario: {{ scenario }}\n\n{% endif %}"
        if "persona" not in used:
            preamble += "{% if persona %}The user is this person: {{ persona }}\n\n{% endif %}"
        changes[key] = preamble + source
    return replace(spec, **changes) if changes else spec
