"""The engine of one framework round (seed and variation tasks, GenLLM enrichment, a manifest
that stays ``running`` until the framework's end), and the GenLLM prompts."""
from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Any, Sequence

from fountain.engine import Engine, RunOptions, RunResult
from fountain.errors import FountainError, OutputError
from fountain.plan import Task, seed_tasks


class _RoundEngine(Engine):
    """The engine running one round: given seed tasks (None: the spec's), extra tasks (PE
    variations), the iteration number for provenance, and optionally the GenLLM enrichment."""

    def __init__(self, spec: Any, options: RunOptions, provider: Any, *, source_spec: Any,
                 seeds: list[Task] | None = None, extra: Sequence[Task] = (), iteration: int = 0,
                 enrich_personas: int | None = None, reuse_enrichment: bool = True):
        super().__init__(spec, options, provider, source_spec=source_spec)
        self._seeds = seeds
        self._extra = list(extra)
        self.iteration = iteration
        self.enrich_personas = enrich_personas
        self.reuse_enrichment = reuse_enrichment
        self.enrichment = None
        self.personas = tuple(spec.personas)

    def plan_seeds(self) -> list[Task]:
        if self._seeds is not None:
            return list(self._seeds)
        return seed_tasks(self.spec.seed_directions, self.gen.seeds_per_direction, self.personas)

    def plan_extra(self) -> list[Task]:
        return list(self._extra)

    def _finish(self, started: float, interrupted: bool) -> RunResult:
        """The engine's end of a round, except that a round is never the end of the run: the
        framework's stages (dedup, rating, the final export) still follow, so the manifest stays
        ``running`` instead of ``completed`` and the dataset file keeps its previous content (none
        on a first run) instead of the round's raw export. ``_Runner._finish`` completes the run."""
        from fountain.export import DATASET_FILES

        fmt = self.options.format or getattr(self.spec.output, "format", None) or "messages"
        dataset = self.output_dir / DATASET_FILES.get(fmt, DATASET_FILES["messages"])
        before = dataset.with_name(f".{dataset.name}.before-round")
        before.unlink(missing_ok=True)
        try:
            os.link(dataset, before)
            kept = True
        except FileNotFoundError:
            kept = False
        except OSError:  # no hard links on this file system
            import shutil

            shutil.copyfile(dataset, before)
            kept = True
        manifest = self.manifest
        end = manifest.end

        def end_round(status: str, **kwargs: Any) -> None:
            end(status, **kwargs)
            if status == "completed":
                manifest.status = "running"
                if manifest.runs:
                    manifest.runs[-1]["status"] = "running"

        manifest.end = end_round  # this round's manifest only
        try:
            return super()._finish(started, interrupted)
        finally:
            del manifest.end
            if kept:
                os.replace(before, dataset)
            else:
                dataset.unlink(missing_ok=True)

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
            self.manifest.end("stopped" if isinstance(error, FountainError) else "failed", reason=reason,
                              stats=self.stats)
            self.manifest.write(self.output_dir)
            raise

    async def _enrich(self) -> None:
        from fountain.enrich import (ENRICHMENT_FILE, combine_personas, enrich_scene, load_enrichment,
                                     save_enrichment)

        path = self.output_dir / ENRICHMENT_FILE
        found = load_enrichment(path) if self.reuse_enrichment else None
        if found is not None and found.requested != self.enrich_personas:
            raise OutputError(f"{ENRICHMENT_FILE} holds {found.requested} requested persona(s), this run "
                              f"asks for {self.enrich_personas}", location=str(path),
                              hint="run again with the same --personas to continue, or write the new run "
                                   "elsewhere with --output")
        if found is None:
            found, warnings = await enrich_scene(self.spec, self.dispatcher, n_personas=self.enrich_personas,
                                                 seed=self.seed, max_retries=self.max_retries)
            self.warnings.extend(warnings)
            save_enrichment(path, found)
        self.enrichment = found
        self.scenario = found.scenario
        self.personas = combine_personas(self.spec.personas, found.personas)
        if self.roleplay is not None:
            from fountain.roleplay import SCENE_MAX_CHARS

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
    :mod:`fountain.prompts` already)."""
    if spec.template_style != "jinja":
        return spec
    from fountain.prompts import template_variables_used

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
