"""Frameworks: how rounds of generate -> rate -> select are composed (names of the original platform).

- ``Gen``: seeds and derivations (:mod:`fountain.engine`), then dedup (:mod:`fountain.raters.dedup`).
- ``GenLLM``: the model first enriches the scene (:mod:`fountain.enrich`: a scenario paragraph and
  personas for the user role), then Gen with the scenario and the personas in every prompt.
- ``Filter``: rounds of generate -> dedup -> rate (RF, PE, or dedup only) that accumulate the kept
  conversations until ``--target`` of them or ``--iterations`` rounds.
- ``Feedback``: Private Evolution. Iteration 0 is a Gen population; each iteration t = 1..T
  embeds the population, lets the private conversations vote for their nearest synthetic ones
  (the DP histogram of :mod:`fountain.raters.pe`), selects by rank or by sampling, and asks the
  model for variations (derivations) of the selected SYNTHETIC conversations, which form the next
  population. Every iteration is charged to a :class:`~fountain.raters.privacy.PrivacyLedger`
  written to the manifest (``privacy.ledger``). The dataset is the last population, deduplicated.

Every round runs the engine into the same output folder, so the cache, the journals, resume and
the ``--budget`` cover the whole run. ``framework.json`` in the output folder records what only the
framework knows (accepted ids per round, the DP selections, the privacy spent), so a resumed run
never draws the DP noise of an iteration twice. Rejects of the framework (``duplicate:<method>``,
``rf:<reason>``, ``pe:no_votes``) are added to ``rejects.jsonl`` after the engine's own.

Privacy hygiene: the private conversations are read into memory, embedded in memory (no cache),
and only the noisy histogram leaves the rater; prompts only ever hold synthetic conversations; no
message quotes private text.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Sequence

from fountain import aio
from fountain.engine import (DERIVATIONS_FILE, REJECTS_FILE, SEEDS_FILE, Engine, RunOptions, RunResult,
                             effective_spec, make_provider, output_folder, resolve_mode)
from fountain.errors import FountainError, OutputError, PrivacyBudgetError, RealDataError
from fountain.journal import write_text_atomic
from fountain.plan import DERIVATION, SEED, Task, count_derivations, prefix_lengths, seed_tasks, task_id
from fountain.types import Sample

FRAMEWORKS = ("Gen", "GenLLM", "Filter", "Feedback")
RATERS = ("PE", "RF")
STATE_FILE = "framework.json"
EMBEDDINGS_FILE = "embeddings.sqlite"
# Filter with a --target and no --iterations stops after this many rounds at most.
DEFAULT_FILTER_ROUNDS = 10
# Feedback with rank selection: the top ceil(S/2) conversations of a population of S each get
# two variations, so the population keeps its size while only the better half survives.
RANK_VARIATIONS = 2
DEFAULT_K = {"PE": 1, "RF": 5}
# Conversations embedded per call: each call's vectors are persisted (embeddings.sqlite) before the
# next starts, and the event loop gets a turn in between, so Ctrl-C stops a long dedup promptly.
EMBED_BATCH = 128
FRAMEWORK_REASONS = ("duplicate:", "rf:", "pe:")
STATE_VERSION = 1


# --- the plan: every check that can be made before a token is spent -----------------------------


@dataclass(frozen=True)
class PrivacyPlan:
    """The PE budget of a run: noise sigma per iteration, T iterations, (epsilon, delta)."""

    sigma: float
    iterations: int
    delta: float
    delta_source: str  # "1/(N ln N)" | "given"
    epsilon_budget: float
    epsilon_planned: float
    n_private: int

    def to_dict(self) -> dict[str, Any]:
        finite = (lambda v: None if math.isinf(v) else v)
        return {"sigma": self.sigma, "iterations_planned": self.iterations, "delta": self.delta,
                "delta_source": self.delta_source, "epsilon_budget": finite(self.epsilon_budget),
                "epsilon_planned": finite(self.epsilon_planned), "private_records": self.n_private}


@dataclass
class FrameworkPlan:
    """A validated framework run. ``spec`` carries the run's framework, raters and privacy
    settings (so the output folder's fingerprint covers them); ``real`` holds the private
    conversations in memory and is never written anywhere."""

    framework: str
    rater: str | None
    spec: Any
    iterations: int
    target: int | None
    k: int
    personas: int | None
    embedder: str | None
    selection: str
    threshold: float | None
    real_path: Path | None = None
    real: list[Any] | None = field(default=None, repr=False)
    privacy: PrivacyPlan | None = None
    notes: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)  # settings that differ from setup.yaml

    def describe(self) -> str:
        """One line for ``--dry-run`` and logs (numbers only)."""
        text = f"framework {self.framework}"
        if self.framework == "GenLLM":
            text += f" ({self.personas} generated persona(s))"
        if self.framework == "Filter":
            text += f": up to {self.iterations} round(s)" + (f", target {self.target}" if self.target else "")
        if self.framework == "Feedback":
            text += f": {self.iterations} PE iteration(s) after the initial population"
        if self.rater:
            text += f"; rater {self.rater} (k = {self.k}) on {len(self.real or ())} real conversation(s)"
        if self.privacy is not None:
            p = self.privacy
            eps = "inf" if math.isinf(p.epsilon_budget) else f"{p.epsilon_budget:.4g}"
            text += (f"; sigma = {p.sigma:.4g}, epsilon {p.epsilon_planned:.4g} of the budget {eps}, "
                     f"delta = {p.delta:.3g}")
        if self.framework in ("Filter", "Feedback"):
            text += " (the estimate below is for one round)"
        return text


def _resolve_name(value: str, choices: Sequence[str], what: str, location: str) -> str:
    for choice in choices:
        if value.strip().casefold() == choice.casefold():
            return choice
    lowered = {c.casefold(): c for c in choices}
    close = get_close_matches(value.strip().casefold(), list(lowered), n=1, cutoff=0.5)
    hint = (f"did you mean {lowered[close[0]]}? " if close else "") + f"{what}s: {', '.join(choices)}"
    raise FountainError(f"unknown {what} {value!r}", location=location, hint=hint)


def _spec_has(spec: Any, block: str, key: str) -> bool:
    data = getattr(spec, "data", None) or {}
    section = data.get(block) if isinstance(data, dict) else None
    return isinstance(section, dict) and section.get(key) is not None


def plan_framework(spec: Any, options: RunOptions | None = None) -> FrameworkPlan:
    """Check a framework run before any model is called, and plan its privacy budget.

    Reads the real data (``--real-data``) when a rater needs it; raises a
    :class:`~fountain.errors.FountainError` (or :class:`~fountain.errors.PrivacyBudgetError`)
    with a hint for anything wrong. Loads no model.
    """
    from fountain.raters import privacy as accountant

    options = options or RunOptions()
    framework = _resolve_name(options.framework or spec.framework or "Gen", FRAMEWORKS, "framework",
                              "--framework" if options.framework else "framework")
    rater_name = options.rater or spec.raters.rater
    rater = _resolve_name(rater_name, RATERS, "rater", "--rater" if options.rater else "raters.rater") \
        if rater_name else None
    notes: list[str] = []

    if framework in ("Gen", "GenLLM") and rater:
        raise FountainError(f"the {framework} framework does not use a rater (--rater {rater})",
                            location="--rater" if options.rater else "raters.rater",
                            hint="--framework Filter rates and accumulates, --framework Feedback runs "
                                 "Private Evolution (PE); or drop the rater")
    if framework == "Feedback" and rater != "PE":
        # Name where the value came from: a command-line option, or a key of setup.yaml.
        if rater == "RF":
            raise FountainError("Feedback needs the PE rater; RF cannot steer it (RF is not "
                                "differentially private)", location="--rater" if options.rater else "raters.rater",
                                hint="use --rater PE, or --framework Filter --rater RF" if options.rater else
                                "set raters.rater: PE in setup.yaml, or framework: Filter to rate with RF")
        if options.framework:
            raise FountainError("the Feedback framework (Private Evolution) needs --rater PE",
                                location="--framework", hint="add --rater PE --real-data FILE --epsilon E")
        locator = (getattr(spec, "cache", None) or {}).get("locator")
        raise FountainError("framework: Feedback in setup.yaml (Private Evolution) needs the PE rater, and "
                            "none is set", location=locator.at(("framework",)) if locator is not None
                            else "framework",
                            hint="set raters.rater: PE (with raters.real_data and privacy.epsilon) in "
                                 "setup.yaml, or pass --rater PE --real-data FILE --epsilon E")

    personas = options.personas
    if personas is not None and framework != "GenLLM":
        raise FountainError("the number of personas only applies to GenLLM, which generates them", location="--personas",
                            hint="use it with --framework GenLLM")
    if framework == "GenLLM":
        from fountain.enrich import DEFAULT_PERSONAS, MAX_PERSONAS

        personas = DEFAULT_PERSONAS if personas is None else personas
        if not 1 <= personas <= MAX_PERSONAS:
            raise FountainError(f"the number of personas must lie between 1 and {MAX_PERSONAS}, got {personas}",
                                location="--personas")

    if options.iterations is not None and framework in ("Gen", "GenLLM"):
        raise FountainError(f"{framework} makes one pass: it has no iterations", location="--iterations",
                            hint="rounds are for --framework Filter or Feedback")
    if options.iterations is not None:
        iterations = options.iterations
    elif framework == "Filter" and not _spec_has(spec, "privacy", "iterations"):
        target_given = options.target is not None or spec.generation.target is not None
        iterations = DEFAULT_FILTER_ROUNDS if target_given else 1
    else:
        iterations = spec.privacy.iterations
    if int(iterations) != iterations or iterations < 1:
        raise FountainError(f"iterations must be a positive integer, got {iterations!r}",
                            location="--iterations")
    iterations = int(iterations)

    target = options.target if options.target is not None else spec.generation.target
    if options.target is not None and framework == "Feedback":
        raise FountainError("Feedback has no target: its dataset is the last population",
                            location="--target", hint="use --iterations and --seeds-per-direction instead")
    if framework == "Feedback":
        target = None
    if target is not None and target < 1:
        raise FountainError(f"the target must be at least 1, got {target}", location="--target")

    epsilon = options.epsilon if options.epsilon is not None else spec.privacy.epsilon
    if options.epsilon is not None and rater != "PE":
        raise FountainError("a privacy budget applies to the PE rater only"
                            + ("; RF is NOT differentially private" if rater == "RF" else ""),
                            location="--epsilon",
                            hint="use --rater PE (with --framework Feedback or Filter), or drop --epsilon")
    if options.sigma is not None and rater != "PE":
        raise FountainError("sigma is the noise of the PE rater only", location="--sigma",
                            hint="use --rater PE, or drop --sigma")
    if options.delta is not None and rater != "PE":
        raise FountainError("delta is part of the PE rater's privacy budget", location="--delta",
                            hint="use --rater PE, or drop --delta")

    k = options.k if options.k is not None else (
        spec.raters.k if _spec_has(spec, "raters", "k") else DEFAULT_K.get(rater or "", 1))
    if k < 1:
        raise FountainError(f"k must be at least 1, got {k}", location="--k")

    # Real data: the CLI's path is relative to the working folder, the spec's to the spec folder.
    real_path: Path | None = None
    real_text = None
    if options.real_data is not None:
        if not rater:
            raise FountainError("real data is only read by a rater", location="--real-data",
                                hint="add --rater PE (differentially private) or --rater RF (not private)")
        real_text = str(options.real_data)
        real_path = Path(options.real_data).expanduser()
    elif spec.raters.real_data and rater:
        real_text = spec.raters.real_data
        real_path = Path(spec.raters.real_data).expanduser()
        if not real_path.is_absolute():
            real_path = Path(spec.folder) / real_path
    if rater and real_path is None:
        raise RealDataError(f"the {rater} rater needs real conversations to compare with",
                            location="--real-data",
                            hint="pass --real-data FILE (JSONL in a format fountain exports, or a Janus "
                                 "outputs.json), or set raters.real_data in setup.yaml")
    real = None
    privacy_plan = None
    if rater:
        from fountain.realdata import load_real_data

        real = load_real_data(real_path, default_category=spec.category)
        in_category = sum(1 for r in real if r.category == spec.category)
        if rater == "RF" and in_category < 2:
            raise RealDataError(f"RF needs at least 2 real conversations of the spec's category "
                                f"{spec.category!r}; the real data has {in_category}", location=str(real_path),
                                hint="set metadata.category (or category) of the real records to the "
                                     "spec's category")
        if rater == "PE" and in_category == 0:
            raise RealDataError(f"none of the {len(real)} real conversations has the spec's category "
                                f"{spec.category!r}: nothing would vote", location=str(real_path),
                                hint="set metadata.category (or category) of the real records to the "
                                     "spec's category")
        if rater == "RF":
            notes.append("RF is NOT differentially private: its decisions depend on every real conversation")
    if rater == "PE":
        if epsilon is None:
            raise PrivacyBudgetError("the PE rater needs a privacy budget", location="--epsilon",
                                     hint="pass --epsilon E (e.g. 4; `fountain privacy --epsilon E "
                                          "--iterations T --n N` shows the noise it implies), or set "
                                          "privacy.epsilon in setup.yaml")
        if not epsilon > 0:
            raise PrivacyBudgetError(f"epsilon must be positive, got {epsilon}", location="--epsilon")
        n = len(real or ())
        delta = options.delta if options.delta is not None else spec.privacy.delta
        if delta is not None:
            source = "given"
            if not 0.0 < delta < 1.0:
                raise FountainError(f"delta must lie strictly between 0 and 1, got {delta}",
                                    location="--delta", hint="the usual choice is below 1/N")
        else:
            source = "1/(N ln N)"
            delta = accountant.default_delta(n)
        sigma = options.sigma if options.sigma is not None else accountant.sigma_for(epsilon, iterations, delta)
        if sigma < 0 or math.isnan(sigma):
            raise FountainError(f"sigma must be non-negative, got {sigma}", location="--sigma")
        # A plan whose epsilon exceeds the budget does not start (PrivacyBudgetError).
        spent = accountant.check_plan(sigma, iterations, delta, epsilon)
        privacy_plan = PrivacyPlan(sigma, iterations, delta, source, float(epsilon), spent, n)
        if math.isinf(epsilon) or sigma == 0.0:
            notes.append("epsilon = inf: no noise is added and there is NO privacy guarantee")
        notes.extend(_weak_privacy_notes(n, delta, source, sigma))
    selection = spec.raters.selection
    threshold = spec.raters.threshold
    embedder = options.embedder or spec.raters.embedder

    # The run's settings go into the spec it fingerprints: an output folder holds one framework,
    # one rater and one budget. The keys that differ from setup.yaml are kept in the manifest.
    wanted = {"framework": framework, "raters.rater": rater, "raters.k": k, "raters.embedder": embedder,
              "raters.real_data": real_text if rater else spec.raters.real_data,
              "privacy.epsilon": epsilon if rater == "PE" else spec.privacy.epsilon,
              "privacy.delta": options.delta if options.delta is not None else spec.privacy.delta,
              "privacy.iterations": iterations if framework in ("Filter", "Feedback") else spec.privacy.iterations}
    overrides = {key: value for key, value in wanted.items() if value != _setting(spec, key)}
    planned = apply_overrides(spec, overrides)
    return FrameworkPlan(framework, rater, planned, iterations, target, k, personas, embedder, selection,
                         threshold, real_path, real, privacy_plan, notes, overrides)


def _setting(spec: Any, key: str) -> Any:
    value = spec
    for part in key.split("."):
        value = getattr(value, part)
    return value


def apply_overrides(spec: Any, overrides: dict[str, Any]) -> Any:
    """``spec`` with a run's framework settings (dotted keys: ``framework``, ``raters.rater``,
    ``privacy.epsilon``...), as recorded in the manifest under ``framework.overrides``."""
    changes: dict[str, Any] = {}
    for block in ("raters", "privacy"):
        values = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(block + ".")}
        if values:
            changes[block] = replace(getattr(spec, block), **values)
    if "framework" in overrides:
        changes["framework"] = overrides["framework"]
    return replace(spec, **changes) if changes else spec


# --- engines of one round --------------------------------------------------------------------------


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


# --- helpers ------------------------------------------------------------------------------------


def _weak_privacy_notes(n: int, delta: float, delta_source: str, sigma: float) -> list[str]:
    """Warnings for a PE plan whose guarantee or usefulness is weaker than its numbers suggest."""
    notes = []
    if delta_source == "given" and n > 0 and delta >= 1.0 / n:
        # (eps, delta)-DP with delta >= 1/N allows publishing a random private record in full.
        notes.append(f"delta = {delta:.3g} is not below 1/N = {1.0 / n:.3g} for {n} private "
                     f"conversation(s): such a guarantee allows revealing a whole record; use a "
                     f"delta well below 1/N (the default is 1/(N ln N) = "
                     f"{1.0 / (n * math.log(n)) if n > 1 else float('nan'):.3g})")
    if 0 < n and 0 < sigma and not math.isinf(sigma) and n < 3 * sigma:
        # Each private conversation casts one vote; noise of this size buries a histogram of N votes.
        notes.append(f"only {n} private conversation(s) cast votes against noise of sigma = "
                     f"{sigma:.3g} per count: the feedback will be mostly noise (more real data, "
                     f"a larger --epsilon or fewer --iterations help)")
    return notes


def dedup_view(sample: Sample) -> tuple:
    """The turns dedup compares: what the model wrote. A derivation's prefix is its parent's by
    design, so only its continuation counts; a seed counts whole."""
    prov = sample.provenance
    if prov.kind != SEED and prov.conversation_type != "instruct" and prov.prefix_turns:
        return tuple(sample.turns[prov.prefix_turns:])
    return tuple(sample.turns)


def reject_record(sample: Sample, reason: str, detail: str, *, keep_text: bool = False,
                  **extra: Any) -> dict[str, Any]:
    """A ``rejects.jsonl`` record for an accepted sample the framework leaves out. With
    ``keep_text`` it carries the conversation (``messages``): for duplicates, so a user can read
    what was dropped; never for rater rejects, whose near-copies of real (maybe private) records
    stay in the journal only."""
    full = sample.to_record()
    meta = full["metadata"]
    for key in ("id", "kind", "direction"):
        meta.pop(key, None)
    record = {"id": sample.id, "kind": sample.provenance.kind, "direction": sample.provenance.direction,
              "reason": reason, "detail": detail, "raw": "", "attempts": 0}
    record.update(extra)
    if keep_text:
        record["messages"] = full["messages"]
    record["metadata"] = meta
    return record


def _is_framework_reject(record: dict[str, Any]) -> bool:
    return str(record.get("reason") or "").startswith(FRAMEWORK_REASONS)


def _write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def load_state(output_dir: str | Path) -> dict[str, Any] | None:
    """``framework.json`` of an output folder (None when absent)."""
    path = Path(output_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise OutputError(f"{STATE_FILE} cannot be read ({error})", location=str(path),
                          hint="it was damaged or edited; restore it, or write the run elsewhere with --output") from None
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        raise OutputError(f"{STATE_FILE} is not a fountain framework state", location=str(path),
                          hint="restore it, or write the run elsewhere with --output")
    return data


def _embed_extra_missing(name: str | None) -> str | None:
    """The first package of the embed extra that is not installed (None when all are)."""
    from fountain.embed import BUNDLED_ALIASES, BUNDLED_PACKAGE

    needed = ["torch", "sentence_transformers"]
    if name in BUNDLED_ALIASES:
        needed.append(BUNDLED_PACKAGE)
    for package in needed:
        try:
            if importlib.util.find_spec(package) is None:
                return package
        except (ImportError, ValueError):
            return package
    return None


def _combine_stats(all_stats: list[Any]) -> Any:
    from fountain.dispatch import RunStats
    from fountain.types import Usage

    if not all_stats:
        return None
    total = RunStats()
    total.started = all_stats[0].started
    total.started_at = all_stats[0].started_at
    session = Usage()
    for stats in all_stats:
        for name in ("requests", "completed", "cache_hits", "retries", "rate_limited", "failed", "unpriced"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        total.errors.update(stats.errors)
        session = session + stats.session_usage
    total.session_usage = session
    total.usage = all_stats[-1].usage
    total.cost_usd = all_stats[-1].cost_usd
    return total


# --- the runner ---------------------------------------------------------------------------------


class _Runner:
    def __init__(self, plan: FrameworkPlan, options: RunOptions, provider: Any, embedder: Any,
                 noise_rng: Any):
        self.plan = plan
        self.source = plan.spec
        self.framework = plan.framework
        multi = plan.framework in ("Filter", "Feedback")
        # Filter and Feedback count accepted conversations themselves: the engine must not stop
        # a round at a target.
        self.options = replace(options, target=None) if multi else options
        effective = effective_spec(self.source, self.options)
        if multi and effective.generation.target is not None:
            effective = replace(effective, generation=replace(effective.generation, target=None))
        if plan.framework == "GenLLM":
            effective = genllm_spec(effective)
        self.effective = effective
        self.output_dir = output_folder(effective, options)
        self.provider = provider
        self.own_provider = provider is None
        self.given_embedder = embedder
        self.noise_rng = noise_rng
        self.embedder = None  # the raw embedder (private data goes through this one only)
        self.synthetic_embedder = None  # cached (persisted) embeddings of synthetic conversations
        self.warnings: list[str] = list(plan.notes)
        self.results: list[RunResult] = []
        self.stats: list[Any] = []
        self.state: dict[str, Any] = {}
        self.resuming = False
        self.started = time.monotonic()
        self.framework_rejects: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {"name": plan.framework, "rater": plan.rater, "overrides": plan.overrides}
        self._private = None
        self._rf = None
        self.ledger = None
        self.seeds_requested = 0
        self.variations_planned = 0
        self.partial: list[str] | None = None  # ids of the dataset so far (Filter, Feedback)
        self.embed_missing: str | None = None  # the embed extra's missing package (_prepare_embedder)
        self.round_begun = False  # an engine round of this invocation has started (manifest.begin)

    # --- setup -----------------------------------------------------------------------------------

    def _check_output(self) -> None:
        from fountain.cache import public_identity
        from fountain.manifest import check_resume

        decision = check_resume(self.output_dir, self.source, self.options.resume,
                                provider=public_identity(self.provider.identity()))
        self.resuming = decision.resuming
        state = load_state(self.output_dir) if self.resuming else None
        if state is not None and state.get("framework") != self.framework:
            raise OutputError(f"{STATE_FILE} belongs to a {state.get('framework')} run, this is {self.framework}",
                              location=str(self.output_dir / STATE_FILE),
                              hint="write this run elsewhere with --output")
        self.state = state or {"version": STATE_VERSION, "framework": self.framework,
                               "rater": self.plan.rater, "rounds": [], "ledger": []}
        if self.plan.privacy is not None and self.state.get("delta") not in (None, self.plan.privacy.delta):
            raise PrivacyBudgetError(
                "the privacy plan changed since this run started (delta "
                f"{self.state['delta']:.3g} then, {self.plan.privacy.delta:.3g} now: the real data changed?)",
                location=str(self.output_dir / STATE_FILE),
                hint="the ledger is kept for one private dataset and one delta: write a new run with --output")

    def _embedding_dedup(self) -> bool:
        settings = self.source.raters.dedup
        return bool(settings.enabled and settings.embedding_threshold is not None)

    def _prepare_embedder(self) -> None:
        """Check, before any token is spent, that the embedder can be had; load it now only when it
        is certainly needed (a rater) or was named (--embedder: its errors come first). The default
        one for dedup loads lazily, once the embedding stage has 2 or more candidates left."""
        from fountain.embed import BUNDLED_ALIASES

        if not (self.plan.rater or self._embedding_dedup()) or self.given_embedder is not None:
            return
        missing = _embed_extra_missing(self.plan.embedder)
        if missing and not self.plan.rater:
            # Without the embed extra the other dedup stages still run (_dedup says so).
            self.embed_missing = missing
            return
        if self.plan.rater or self.plan.embedder not in BUNDLED_ALIASES:
            self._load_embedder()

    def _load_embedder(self) -> None:
        """Load the embedder (once) and wrap it in the persisted cache for synthetic texts."""
        from fountain.embed import CachedEmbedder

        if self.embedder is not None:
            return
        embedder = self.given_embedder
        if embedder is None:
            from fountain.embed import load_embedder

            embedder = load_embedder(self.plan.embedder)
        while isinstance(embedder, CachedEmbedder):  # private texts must never meet a persisted cache
            embedder = embedder.embedder
        self.embedder = embedder
        if self.options.no_cache:
            self.synthetic_embedder = CachedEmbedder(embedder)
        else:
            self.synthetic_embedder = CachedEmbedder(embedder, self.output_dir / EMBEDDINGS_FILE, persist=True)

    def _close(self) -> None:
        if self.synthetic_embedder is not None:
            self.synthetic_embedder.close()

    async def run(self) -> RunResult:
        if self.provider is None:
            self.provider = make_provider(self.effective, self.options)
        try:
            self._check_output()
            self._prepare_embedder()
            if self.framework in ("Gen", "GenLLM"):
                return await self._gen()
            if self.framework == "Filter":
                return await self._filter()
            return await self._feedback()
        except BaseException as error:
            self._mark_ended(error)
            raise
        finally:
            self._close()
            if self.own_provider:
                await self.provider.aclose()

    # --- engine rounds ---------------------------------------------------------------------------

    def _engine(self, *, seeds: list[Task] | None = None, extra: Sequence[Task] = (),
                iteration: int = 0) -> _RoundEngine:
        return _RoundEngine(self.effective, self.options, self.provider, source_spec=self.source,
                            seeds=seeds, extra=extra, iteration=iteration,
                            enrich_personas=self.plan.personas if self.framework == "GenLLM" else None,
                            reuse_enrichment=self.resuming)

    def _mark_ended(self, error: BaseException) -> None:
        """A run stopped after its last round (during dedup, rating or the export) is not
        completed: say so in the manifest, as the engine does for a stop during generation."""
        from fountain.manifest import Manifest

        if not self.round_begun:
            return  # this invocation wrote no run entry: the manifest is an earlier run's
        try:
            manifest = Manifest.read(self.output_dir)
            if manifest is None or manifest.status != "running":
                return  # the engine already recorded how its round ended
            if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
                manifest.end("stopped", reason="interrupted")
            elif isinstance(error, FountainError):
                manifest.end("stopped", reason=error.message)
            else:
                manifest.end("failed", reason=f"{type(error).__name__}: {error}")
            manifest.write(self.output_dir)
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    async def _run_engine(self, engine: _RoundEngine) -> RunResult:
        self.round_begun = True
        try:
            result = await engine.run()
        except BaseException:
            stats = getattr(engine, "stats", None)
            if stats is not None:
                self.stats.append(stats)
            self._salvage(sys.exc_info()[1])
            raise
        self._annotate_manifest()
        self.results.append(result)
        self.stats.append(result.stats)
        self.warnings.extend(w for w in result.warnings if w not in self.warnings)
        if getattr(engine, "enrichment", None) is not None:
            self.info["enrichment"] = engine.enrichment.summary()
        # Every engine run resumes the manifest: from now on this invocation counts as a resume.
        self.resuming = True
        return result

    def _salvage(self, error: BaseException | None) -> None:
        """After a stopped round: put the framework's rejects back into rejects.jsonl (the engine
        rewrote it without them) and, when the run stopped cleanly (budget, error rate...), make
        dataset.jsonl the framework's dataset so far instead of the engine's raw export. Best
        effort: the state file keeps everything a resume needs."""
        try:
            if isinstance(error, FountainError):
                if self.partial is not None:
                    samples = self._journal_samples()
                    dataset = [samples[i] for i in self.partial if i in samples]
                elif self.framework in ("Gen", "GenLLM"):
                    dataset, self.framework_rejects, _ = self._dedup_sync(list(self._journal_samples().values()))
                else:
                    dataset = None
                if dataset is not None:
                    self._export(dataset)
            self._write_rejects()
            self._annotate_manifest()
        except Exception:  # noqa: BLE001 - never hide the error that stopped the run
            pass

    def _annotate_manifest(self) -> None:
        """Put the framework summary (with the run's overrides of setup.yaml, which `fountain
        status` needs to recognise the spec) into the manifest as soon as it exists."""
        from fountain.manifest import Manifest

        manifest = Manifest.read(self.output_dir)
        if manifest is not None:
            manifest.extra["framework"] = self.info
            manifest.write(self.output_dir)

    def _journal_samples(self) -> dict[str, Sample]:
        from fountain.journal import read_journal

        out: dict[str, Sample] = {}
        for name in (SEEDS_FILE, DERIVATIONS_FILE):
            for record in read_journal(self.output_dir / name).records:
                try:
                    sample = Sample.from_record(record)
                except (KeyError, TypeError, ValueError):
                    continue  # the engine reports damaged records when it reads them
                out.setdefault(sample.id, sample)
        return out

    def _save_state(self) -> None:
        if self.plan.privacy is not None:
            self.state["delta"] = self.plan.privacy.delta
        _write_json_atomic(self.output_dir / STATE_FILE, self.state)

    def _round(self, number: int) -> dict[str, Any] | None:
        for entry in self.state["rounds"]:
            if entry.get("round") == number:
                return entry
        return None

    def _seed_plan(self, round_number: int) -> list[Task]:
        """Seed tasks of Filter round ``round_number`` (1-based): fresh sample indices per round,
        so their ids (and cache keys) differ from every other round's."""
        spec = self.effective
        personas = tuple(spec.personas)
        per_direction = spec.generation.seeds_per_direction * max(1, len(personas))
        start = (round_number - 1) * per_direction
        tasks = []
        for d, direction in enumerate(spec.seed_directions):
            for index in range(start, start + per_direction):
                persona = personas[index % len(personas)] if personas else None
                tasks.append(Task(task_id(SEED, direction, index, None, 0, persona), SEED, direction, index,
                                  persona, None, 0, (d, index)))
        return tasks

    # --- rating ----------------------------------------------------------------------------------

    def _dedup_start(self, samples: Sequence[Sample], earlier: Sequence[Sample]) -> dict[str, Any]:
        """The exact and MinHash stages of a dedup; the embedding stage follows in _dedup_end with
        vectors of the survivors only (no embedder is loaded when fewer than 2 survive)."""
        from fountain.embed import conversation_text
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
        settings = DedupSettings(exact=spec_settings.exact, minhash=minhash,
                                 minhash_threshold=spec_settings.minhash_threshold or 0.9,
                                 embedding=False,
                                 embedding_threshold=spec_settings.embedding_threshold or 0.9)
        everything = list(earlier) + list(samples)
        views = [dedup_view(s) for s in everything]
        findings = dedup([conversation_text(v) for v in views], settings=settings)
        dropped = findings.dropped
        alive = [i for i in range(len(everything)) if i not in dropped]
        return {"samples": list(samples), "everything": everything, "offset": len(earlier),
                "findings": list(findings), "stages_run": list(findings.stages_run),
                "skipped": {**{k: v for k, v in findings.stages_skipped.items() if v != "disabled"}, **skipped},
                "embedding": embedding, "threshold": settings.embedding_threshold,
                "neighbours": settings.neighbours, "alive": alive,
                "candidates": [views[i] for i in alive] if embedding and len(alive) >= 2 else []}

    def _dedup_end(self, work: dict[str, Any], vectors: Any
                   ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        from fountain.raters.dedup import DuplicateFinding, embedding_duplicates

        findings = list(work["findings"])
        stages_run = list(work["stages_run"])
        if work["embedding"]:
            stages_run.append("embedding")
            if vectors is not None:
                alive = work["alive"]
                found = embedding_duplicates(vectors, range(len(alive)), work["threshold"], work["neighbours"])
                findings += [DuplicateFinding(alive[f.index], alive[f.duplicate_of_index], f.method, f.score)
                             for f in found]
        findings.sort(key=lambda finding: finding.index)
        everything, offset = work["everything"], work["offset"]
        rejects = []
        dropped: set[int] = set()
        for finding in findings:
            if finding.index < offset:
                continue  # an earlier round's kept sample stays kept
            dropped.add(finding.index)
            kept = everything[finding.duplicate_of_index]
            rejects.append(reject_record(everything[finding.index], finding.reason,
                                         f"duplicates {kept.id} ({finding.method}, score {finding.score:.3f})",
                                         keep_text=True, duplicate_of=kept.id,
                                         score=round(float(finding.score), 4)))
        survivors = [s for i, s in enumerate(work["samples"]) if i + offset not in dropped]
        for stage, why in work["skipped"].items():
            note = f"dedup: {stage} stage skipped ({why})"
            if note not in self.warnings:
                self.warnings.append(note)
        info = {"stages_run": stages_run, "stages_skipped": work["skipped"],
                "dropped": dict(Counter(f.method for f in findings if f.index >= offset))}
        return survivors, rejects, info

    async def _dedup(self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
                     ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        """Drop duplicates among ``samples`` and of ``earlier`` (kept before them)."""
        if not self.source.raters.dedup.enabled:
            return list(samples), [], {"enabled": False}
        work = self._dedup_start(samples, earlier)
        vectors = await self._encode_async(work["candidates"]) if work["candidates"] else None
        return self._dedup_end(work, vectors)

    def _dedup_sync(self, samples: Sequence[Sample], earlier: Sequence[Sample] = ()
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
        from fountain.embed import encode_conversations

        self._load_embedder()
        items = list(conversations)
        for start in range(0, len(items), EMBED_BATCH):
            yield encode_conversations(self.synthetic_embedder, items[start:start + EMBED_BATCH])

    @staticmethod
    def _stack(parts: list[Any], dim: int):
        import numpy as np

        return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)

    async def _encode_async(self, conversations: Sequence[Any]):
        """:meth:`_encode_synthetic` that yields to the event loop between batches, so a Ctrl-C
        (asyncio cancels the main task) stops it after the current batch."""
        parts = []
        for part in self._encode_batches(conversations):
            parts.append(part)
            await asyncio.sleep(0)
        return self._stack(parts, self.synthetic_embedder.dim)

    def _encode_synthetic(self, samples: Sequence[Any]):
        parts = list(self._encode_batches(samples))
        return self._stack(parts, self.synthetic_embedder.dim)

    def _private_embeddings(self) -> dict[str, Any]:
        """Private conversations embedded in memory (no cache), grouped by category."""
        if self._private is None:
            from fountain.embed import encode_conversations
            from fountain.realdata import group_by_category

            groups = group_by_category(self.plan.real or [])
            self._load_embedder()
            self._private = {category: encode_conversations(self.embedder, [c.turns for c in items])
                             for category, items in groups.items()}
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
                if ledger.entries else "use a larger --sigma, fewer --iterations or a larger --epsilon")
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
        return {"rater": "PE", **data, **self.plan.privacy.to_dict(), "k": self.plan.k,
                "threshold_H": threshold, "selection": self.plan.selection, "ledger": entries}

    def _write_privacy(self) -> None:
        from fountain.manifest import Manifest

        manifest = Manifest.read(self.output_dir)
        if manifest is None:
            return  # the first engine round writes the manifest; privacy follows right after
        manifest.privacy = self.privacy_section() or manifest.privacy
        manifest.write(self.output_dir)

    # --- Gen / GenLLM ----------------------------------------------------------------------------

    async def _gen(self) -> RunResult:
        result = await self._run_engine(self._engine())
        self.seeds_requested = result.counts.get("seeds_requested", 0)
        kept, rejects, info = await self._dedup(result.samples)
        self.framework_rejects = rejects
        self.info["dedup"] = info
        return self._finish(kept)

    # --- Filter ----------------------------------------------------------------------------------

    async def _filter(self) -> RunResult:
        plan = self.plan
        if plan.rater == "PE":
            done = sum(1 for entry in self.state["rounds"] if entry.get("complete"))
            self._open_ledger(plan.iterations - done)
        accepted: list[str] = []
        samples: dict[str, Sample] | None = None
        rounds_run = 0
        for number in range(1, plan.iterations + 1):
            if plan.target and len(accepted) >= plan.target:
                break
            rounds_run = number
            recorded = self._round(number)
            if recorded is not None and recorded.get("complete"):
                accepted += recorded["accepted"]
                self.framework_rejects += recorded["rejects"]
                self.partial = list(accepted)
                continue
            seeds = self._seed_plan(number)
            result = await self._run_engine(self._engine(seeds=seeds, iteration=number))
            samples = {s.id: s for s in result.samples}
            seed_ids = {t.id for t in seeds}
            batch = [s for s in result.samples
                     if s.id in seed_ids or (s.provenance.kind != SEED and s.provenance.parent_id in seed_ids)]
            earlier = [samples[i] for i in accepted if i in samples]
            kept, rejects, dedup_info = await self._dedup(batch, earlier)
            vectors = await self._encode_async(kept) if plan.rater and kept else None
            kept, rated, rating = self._rate_batch(kept, number, vectors)
            entry = {"round": number, "seeds": len(seeds), "generated": len(batch),
                     "accepted": [s.id for s in kept], "rejects": rejects + rated,
                     "dedup": dedup_info, "rating": rating, "complete": True}
            self.state["rounds"] = [e for e in self.state["rounds"] if e.get("round") != number] + [entry]
            self._save_state()
            accepted += entry["accepted"]
            self.framework_rejects += entry["rejects"]
            self.partial = list(accepted)
        per_round = len(self._seed_plan(1))
        self.seeds_requested = per_round * rounds_run
        samples = self._journal_samples()
        self.info.update({"rounds": {"max": plan.iterations, "run": rounds_run}, "target": plan.target,
                          "per_round": [{k: e.get(k) for k in ("round", "seeds", "generated", "dedup", "rating")}
                                        | {"accepted": len(e.get("accepted", []))}
                                        for e in sorted(self.state["rounds"], key=lambda e: e["round"])]})
        if plan.target and len(accepted) < plan.target:
            self.warnings.append(f"Filter: {len(accepted)} conversation(s) kept after {rounds_run} round(s), "
                                 f"short of the target {plan.target}; raise --iterations to go on")
        return self._finish([samples[i] for i in accepted if i in samples])

    def _rate_batch(self, batch: list[Sample], number: int, vectors: Any = None
                    ) -> tuple[list[Sample], list[dict[str, Any]], dict[str, Any]]:
        rater = self.plan.rater
        if rater is None or not batch:
            return batch, [], {"rater": rater, "rated": len(batch)}
        if vectors is None:
            vectors = self._encode_synthetic(batch)
        categories = [s.provenance.category for s in batch]
        if rater == "RF":
            decisions = self._real_filter().rate(vectors, categories)
            kept = [s for s, d in zip(batch, decisions) if d.keep]
            rejects = [reject_record(s, d.reason, f"Real Filter: {d.reason.split(':', 1)[1].replace('_', ' ')}",
                                     scores=d.detail())
                       for s, d in zip(batch, decisions) if not d.keep]
            return kept, rejects, {"rater": "RF", "rated": len(batch),
                                   "rejected": dict(Counter(r["reason"] for r in rejects))}
        # PE as a filter: a conversation is kept when its noisy vote count passes the threshold.
        import numpy as np

        from fountain.raters.pe import default_threshold, dp_histogram

        sigma = self.plan.privacy.sigma
        threshold = self.plan.threshold if self.plan.threshold is not None else default_threshold(sigma)
        self._spend(number)
        private = self._private_embeddings()
        keep = np.zeros(len(batch), dtype=bool)
        noisy = np.zeros(len(batch))
        by_category: dict[str, list[int]] = {}
        for index, category in enumerate(categories):
            by_category.setdefault(category, []).append(index)
        for category, rows in by_category.items():
            votes = private.get(category)
            if votes is None:
                votes = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            histogram = dp_histogram(votes, vectors[rows], k=self.plan.k, sigma=sigma,
                                     threshold_H=threshold, rng=self._rng())
            keep[rows] = histogram.clipped > 0
            noisy[rows] = histogram.noisy_counts  # DP output: may be written
        kept = [s for s, ok in zip(batch, keep) if ok]
        rejects = [reject_record(s, "pe:no_votes", f"noisy vote count {noisy[i]:.3f} is below the threshold "
                                                    f"H = {threshold:.3f}", noisy_votes=round(float(noisy[i]), 4))
                   for i, s in enumerate(batch) if not keep[i]]
        return kept, rejects, {"rater": "PE", "rated": len(batch), "kept": len(kept), "threshold_H": threshold}

    # --- Feedback (Private Evolution) ------------------------------------------------------------

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
                tasks.append(Task(tid, DERIVATION, direction, index, persona, parent_id, prefix,
                                  (iteration, slot, offset)))
        return tasks

    def _select(self, iteration: int, population: list[Sample], size: int, vectors: Any = None
                ) -> tuple[list[str], dict[str, Any]]:
        """The DP selection of one iteration (spends privacy first)."""
        from fountain.raters.pe import pe_select_detailed

        per_slot = RANK_VARIATIONS if self.plan.selection == "rank" else 1
        slots = max(1, math.ceil(size / per_slot))
        if vectors is None:
            vectors = self._encode_synthetic(population)
        by_category: dict[str, list[int]] = {}
        for index, sample in enumerate(population):
            by_category.setdefault(sample.provenance.category, []).append(index)
        synthetic = {category: vectors[rows] for category, rows in by_category.items()}
        n_select = {category: max(1, round(slots * len(rows) / len(population)))
                    for category, rows in by_category.items()}
        self._spend(iteration)
        outcome = pe_select_detailed(self._private_embeddings(), synthetic, sigma=self.plan.privacy.sigma,
                                     n_select=n_select, k=self.plan.k, threshold_H=self.plan.threshold,
                                     selection=self.plan.selection, rng=self._rng())
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
            initial = {"round": 0, "seeds": self.seeds_requested, "generated": len(result.samples),
                       "population": [s.id for s in population], "rejects": rejects, "dedup": info,
                       "complete": True}
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
                    raise FountainError(f"Feedback iteration {t} has no conversation to select from: the "
                                        f"population of iteration {t - 1} is empty",
                                        location=str(self.output_dir / STATE_FILE),
                                        hint="every conversation was rejected; check rejects.jsonl, then "
                                             "try another model, more --seeds-per-direction, or wider turn bounds")
                selected, summary = self._select(t, population, size, await self._encode_async(population))
                entry.update({"selected": selected, "selection": summary})
                self.state["rounds"] = [e for e in self.state["rounds"] if e.get("round") != t] + [entry]
                self._save_state()
            tasks = self._variation_tasks(t, entry["selected"], samples)
            result = await self._run_engine(self._engine(seeds=[], extra=tasks, iteration=t))
            produced = {s.id: s for s in result.samples}
            made = [produced[task.id] for task in tasks if task.id in produced]
            population, rejects, info = await self._dedup(made)
            entry.update({"variations": len(tasks), "generated": len(made),
                          "population": [s.id for s in population], "rejects": rejects, "dedup": info,
                          "complete": True})
            self._save_state()
            self.framework_rejects += rejects
            self.variations_planned += len(tasks)
            population_ids = entry["population"]
            self.partial = population_ids
            samples.update(produced)
        samples = self._journal_samples()
        self.info.update({
            "iterations": plan.iterations, "population_size": size, "selection": plan.selection,
            "variations_per_selected": RANK_VARIATIONS if plan.selection == "rank" else 1,
            "per_iteration": [{"iteration": e["round"], "population": len(e.get("population", [])),
                               "variations": e.get("variations"), "selection": e.get("selection"),
                               "dedup": e.get("dedup")}
                              for e in sorted(self.state["rounds"], key=lambda e: e["round"])]})
        return self._finish([samples[i] for i in population_ids if i in samples])

    # --- the end ---------------------------------------------------------------------------------

    def _write_rejects(self) -> list[dict[str, Any]]:
        """rejects.jsonl = the engine's rejects, then the framework's (each once)."""
        from fountain.journal import read_journal, write_jsonl_atomic

        path = self.output_dir / REJECTS_FILE
        engine_rejects = [r for r in read_journal(path).records if not _is_framework_reject(r)]
        seen: set[tuple[str, str]] = set()
        ours = []
        for record in self.framework_rejects:
            key = (record["id"], record["reason"])
            if key not in seen:
                seen.add(key)
                ours.append(record)
        merged = engine_rejects + ours
        write_jsonl_atomic(path, merged)
        return merged

    def _export(self, dataset: list[Sample]) -> Path:
        from fountain.export import export_dataset

        fmt = self.options.format or getattr(self.effective.output, "format", None) or "messages"
        system = getattr(self.effective.output, "system_message", None)
        return export_dataset(dataset, self.output_dir, fmt, system_message=system)

    def _warn_empty(self, path: Path, rejects: list[dict[str, Any]]) -> None:
        """A run that ends with an empty dataset says so at once (in yellow on stderr, and in the
        result's warnings), with the reasons its conversations were rejected."""
        top = Counter(str(r.get("reason") or "?") for r in rejects).most_common(3)
        reasons = ", ".join(f"{reason} ({count})" for reason, count in top) or "none recorded"
        text = (f"the dataset is empty: {path.name} holds 0 records; every conversation was rejected or "
                f"none was generated. See {self.output_dir / REJECTS_FILE} (top reasons: {reasons})")
        if text not in self.warnings:
            self.warnings.append(text)
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[yellow]warning: {escape(text)}[/]")

    def _finish(self, dataset: list[Sample]) -> RunResult:
        from fountain.manifest import Manifest

        rejects = self._write_rejects()
        path = self._export(dataset)
        everything = self._journal_samples()
        seeds = [s for s in everything.values() if s.provenance.kind == SEED]
        gen = self.effective.generation
        derivations_planned = count_derivations(
            [len(s.turns) for s in seeds], len(self.effective.derivational_directions),
            gen.derivations_per_direction, max_prefix_turns=gen.max_prefix_turns,
            conversation_type=gen.type) + self.variations_planned
        counts = {"seeds_requested": self.seeds_requested, "derivations_planned": derivations_planned,
                  "accepted": {"seed": len(seeds), "derivation": len(everything) - len(seeds)},
                  "rejected": dict(sorted(Counter(r["reason"] for r in rejects).items())),
                  "dataset_records": len(dataset)}
        manifest = Manifest.read(self.output_dir)
        manifest_path = None
        if manifest is not None:
            if self.results:
                manifest.counts.update(counts)
            else:
                counts = {**manifest.counts, "dataset_records": len(dataset)}
            manifest.extra["framework"] = self.info
            privacy = self.privacy_section()
            if privacy is not None:
                manifest.privacy = privacy
            # Only now, with dedup, rating and the export done, is the run completed (the rounds
            # left it running). The time after the rounds (embedder, dedup) counts too.
            if manifest.runs and manifest.runs[-1].get("status") == "running":
                engine_time = sum(r.elapsed_s for r in self.results)
                manifest.end("completed", session_elapsed_s=max(0.0, time.monotonic() - self.started - engine_time))
            else:
                manifest.status, manifest.stop_reason = "completed", None
            manifest_path = manifest.write(self.output_dir)
        if not dataset:
            self._warn_empty(path, rejects)
        last = self.results[-1] if self.results else None
        mode = last.mode if last is not None else resolve_mode(self.effective, self.provider.name, self.options.mode)
        return RunResult(output_dir=self.output_dir, dataset_path=path, dataset_records=len(dataset),
                         samples=list(dataset), counts=counts,
                         retries=sum(r.retries for r in self.results), stats=_combine_stats(self.stats),
                         elapsed_s=time.monotonic() - self.started, warnings=list(self.warnings),
                         stopped=None, manifest_path=manifest_path, resumed=self.resuming or bool(
                             last and last.resumed), mode=mode)


# --- entry points ---------------------------------------------------------------------------------


async def run_framework_async(spec: Any, options: RunOptions | None = None, *, provider: Any = None,
                              embedder: Any = None, noise_rng: Any = None) -> RunResult:
    """Run ``spec`` with its framework (``options.framework`` > ``spec.framework`` > Gen).

    ``provider`` overrides the one the spec and options name (tests pass a fake); ``embedder``
    any :class:`~fountain.embed.Embedder` (default: ``--embedder``, else the bundled one).
    ``noise_rng`` is for tests only: DP noise from a known seed carries no privacy guarantee.
    Returns the :class:`~fountain.engine.RunResult` of the whole run (its ``samples`` are the
    dataset); ``manifest.json`` holds the framework's summary and, for PE, the privacy ledger.
    """
    options = options or RunOptions()
    plan = plan_framework(spec, options)
    return await _Runner(plan, options, provider, embedder, noise_rng).run()


def run_framework(spec: Any, options: RunOptions | None = None, *, provider: Any = None,
                  embedder: Any = None, noise_rng: Any = None) -> RunResult:
    """Synchronous :func:`run_framework_async`."""
    return aio.run(run_framework_async(spec, options, provider=provider, embedder=embedder,
                                       noise_rng=noise_rng))


__all__ = ["FRAMEWORKS", "RATERS", "FrameworkPlan", "PrivacyPlan", "STATE_FILE", "apply_overrides", "dedup_view",
           "genllm_spec", "load_state", "plan_framework", "reject_record", "run_framework",
           "run_framework_async"]
