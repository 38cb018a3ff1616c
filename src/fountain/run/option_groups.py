"""The groups of a run's options, one frozen dataclass per concern. :class:`~fountain.run.options.RunOptions`
holds one of each; a stage reads the group it needs (``options.llm.provider``,
``options.budget.budget_usd``). ``None`` means: the spec's value, else the default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LLMOptions:
    """Which provider and model answer, and how they are reached."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    base_urls: tuple[str, ...] | None = None  # several --base-url: a fleet (base_url is the first)
    replay: str | Path | None = None  # fake provider: replay recorded outputs
    timeout: float | None = None  # seconds per request (default: model.timeout_s, else 120)
    structured_output: str | None = None  # auto | json_schema | json_object | none
    # Consent for what a spec may not do on its own (docs/security.md): key variables a spec's
    # own base_url may receive.
    allow_key_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationOptions:
    """What is generated and how many: counts, turns, retries, the reproducibility seed."""

    seed: int | None = None  # makes fake/local runs reproducible
    seeds_per_direction: int | None = None
    derivations_per_direction: int | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    max_prefix_turns: int | None = None
    max_retries: int | None = None
    target: int | None = None
    mode: str | None = None  # auto | json | turns


@dataclass(frozen=True)
class BudgetOptions:
    """What a run may spend, and what it never pays twice: the cache, prices, limits, stops."""

    cache: str | Path | None = None  # default: <output>/cache.sqlite
    no_cache: bool = False
    rpm: float | None = None
    tpm: float | None = None
    budget_usd: float | None = None
    prices: str | Path | None = None
    max_error_rate: float = 0.5


@dataclass(frozen=True)
class ExecutionOptions:
    """How the requests run: concurrency, the executor (local asyncio or Ray), journals, display."""

    concurrency: int | None = None
    executor: str | None = None  # local (asyncio, default) | ray
    ray_address: str | None = None  # a Ray cluster (default: a local Ray)
    ray_actors: int | None = None  # generation actors on the Ray executor (default 2)
    validation_processes: int | None = None  # json answers validated in N processes (None: auto, 0: none)
    fsync: bool = True  # journal lines reach the disk by group commit (see fountain.run.journal)
    quiet: bool = False
    progress: bool | None = None  # None: shown on a terminal unless quiet


@dataclass(frozen=True)
class ExportOptions:
    """Where the run writes, whether it continues what is there, and the dataset's format."""

    output: str | Path | None = None  # default: <spec folder>/<output.folder> ("output")
    resume: str = "if-compatible"  # if-compatible | always | never
    format: str | None = None  # messages | sharegpt | janus
    prefix_loss: str | None = None  # keep (default) | mask: weight 0 on a derivation's prefix turns


@dataclass(frozen=True)
class RatingOptions:
    """The framework and its rater (fountain.frameworks): real data, privacy, embedder, edges."""

    framework: str | None = None  # Gen | GenLLM | Filter | Feedback
    rater: str | None = None  # PE | RF
    real_data: str | Path | None = None
    epsilon: float | None = None
    delta: float | None = None
    sigma: float | None = None  # PE noise per iteration (default: from epsilon, delta, iterations)
    iterations: int | None = None
    embedder: str | None = None
    k: int | None = None
    personas: int | None = None  # GenLLM: personas the model generates
    edge: tuple[str, ...] | None = None  # Feedback/PE: edge services that vote (fountain.edge)
    judge: str | None = None  # --judge PROVIDER[:MODEL] (none: no judge); else the spec's judge: block


#: The groups by their attribute name on RunOptions, in the order the manifest records them.
GROUPS: dict[str, type] = {
    "export": ExportOptions,
    "llm": LLMOptions,
    "generation": GenerationOptions,
    "budget": BudgetOptions,
    "execution": ExecutionOptions,
    "rating": RatingOptions,
}
