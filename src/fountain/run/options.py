"""What a run is told besides the spec (:class:`RunOptions`), what it did (:class:`RunResult`),
and the spec and output folder the options make of a spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.providers.base import Provider
from fountain.run.outputs import CACHE_FILE
from fountain.types import Sample

if TYPE_CHECKING:  # pragma: no cover
    from fountain.providers.dispatch import Dispatcher
    from fountain.spec.model import Spec

DEFAULT_CONCURRENCY = {"local": 1, "fake": 8}
DEFAULT_API_CONCURRENCY = 16


@dataclass
class RunOptions:
    """Everything a run can be told besides the spec. ``None`` means: the spec's value, else the
    default. The CLI's ``run`` command fills one of these; library users build it directly."""

    output: str | Path | None = None  # default: <spec folder>/<output.folder> ("output")
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    replay: str | Path | None = None  # fake provider: replay recorded outputs
    format: str | None = None  # messages | sharegpt | janus
    concurrency: int | None = None
    seed: int | None = None  # makes fake/local runs reproducible
    seeds_per_direction: int | None = None
    derivations_per_direction: int | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    max_prefix_turns: int | None = None
    max_retries: int | None = None
    target: int | None = None
    mode: str | None = None  # auto | json | turns
    prefix_loss: str | None = None  # keep (default) | mask: weight 0 on a derivation's prefix turns
    quiet: bool = False
    progress: bool | None = None  # None: shown on a terminal unless quiet
    fsync: bool = True  # journal lines reach the disk by group commit (see fountain.run.journal)
    # --- production runs (dispatch, cache, manifest) ---
    resume: str = "if-compatible"  # if-compatible | always | never
    cache: str | Path | None = None  # default: <output>/cache.sqlite
    no_cache: bool = False
    rpm: float | None = None
    tpm: float | None = None
    budget_usd: float | None = None
    prices: str | Path | None = None
    max_error_rate: float = 0.5
    # --- consent for what a spec may not do on its own (docs/security.md) ---
    allow_key_env: tuple[str, ...] = ()  # key variables a spec's own base_url may receive
    # --- frameworks and raters (fountain.frameworks; None: the spec's value, else the default) ---
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
    # --- servers and executors (issue 15) ---
    base_urls: tuple[str, ...] | None = None  # several --base-url: a fleet (base_url is the first)
    timeout: float | None = None  # seconds per request (default: model.timeout_s, else 120)
    structured_output: str | None = None  # auto | json_schema | json_object | none
    executor: str | None = None  # local (asyncio, default) | ray
    ray_address: str | None = None  # a Ray cluster (default: a local Ray)
    ray_actors: int | None = None  # generation actors on the Ray executor (default 2)
    # --- the judge (fountain.run.judging) ---
    judge: str | None = None  # --judge PROVIDER[:MODEL] (none: no judge); else the spec's judge: block

    def record(self) -> dict[str, Any]:
        """The options as written into the manifest's run history (paths as text, no secrets)."""
        out = {}
        for key, value in asdict(self).items():
            if value is None or value == () or key in ("quiet", "progress"):
                continue  # an empty tuple is a repeatable option left out (--allow-key-env)
            out[key] = str(value) if isinstance(value, Path) else value
        return out


@dataclass
class RunResult:
    """What a run did. ``counts`` covers the whole output folder (earlier sessions included)."""

    output_dir: Path
    dataset_path: Path | None
    dataset_records: int
    samples: Sequence[Sample]  # the dataset's samples in order (ResultSamples: read on demand)
    counts: dict[str, Any]
    retries: int = 0  # validation re-asks in this session
    stats: Any = None  # fountain.providers.dispatch.RunStats of this session
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    stopped: FountainError | None = None
    manifest_path: Path | None = None
    resumed: bool = False
    mode: str = "json"


def effective_spec(spec: Spec, options: RunOptions) -> Spec:
    """``spec`` with the run's overrides of the generation settings applied."""
    gen = spec.generation
    changes: dict[str, Any] = {}
    for name in (
        "seeds_per_direction",
        "derivations_per_direction",
        "max_prefix_turns",
        "max_retries",
        "target",
        "mode",
    ):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
    if options.max_turns is not None:
        changes["max_turns"] = options.max_turns
        if options.min_turns is None and gen.min_turns > options.max_turns:
            changes["min_turns"] = options.max_turns
    if options.min_turns is not None:
        changes["min_turns"] = options.min_turns
    lo = changes.get("min_turns", gen.min_turns)
    hi = changes.get("max_turns", gen.max_turns)
    if lo > hi:
        raise FountainError(
            f"min_turns ({lo}) is larger than max_turns ({hi})",
            location="--max-turns",
            hint="give a max_turns of at least min_turns",
        )
    return replace(spec, generation=replace(gen, **changes)) if changes else spec


def output_folder(spec: Spec, options: RunOptions) -> Path:
    """Where a run writes: ``--output``, else the spec's ``output.folder`` inside the spec folder."""
    if options.output is not None:
        return Path(options.output)
    folder = getattr(getattr(spec, "output", None), "folder", None) or "output"
    path = Path(folder)
    return path if path.is_absolute() else Path(spec.folder) / path


def make_provider(spec: Spec, options: RunOptions) -> Provider:
    """The provider a run uses: CLI options > environment > the spec's model block > local."""
    from fountain.providers import create_provider, resolve_provider_config

    name = options.provider
    if options.replay is not None:
        if name not in (None, "fake"):
            raise FountainError(
                "--replay works with the fake provider only",
                location="--replay",
                hint="drop --provider, or use --provider fake",
            )
        name = "fake"
    config = resolve_provider_config(
        spec.model,
        provider=name,
        model=options.model,
        base_url=options.base_url,
        allow_key_envs=options.allow_key_env,
        base_urls=options.base_urls,
        timeout_s=options.timeout,
        structured_output=options.structured_output,
    )
    if options.replay is not None:
        config = replace(config, replay=str(options.replay))
    return create_provider(config)


def run_concurrency(spec: Spec, options: RunOptions, provider_name: str) -> int:
    """Requests in flight at once: ``--concurrency``, else the spec's, else the provider's default."""
    value = options.concurrency or spec.model.concurrency
    if value is None:
        value = DEFAULT_CONCURRENCY.get(provider_name, DEFAULT_API_CONCURRENCY)
    return max(1, int(value))


def make_dispatcher(spec: Spec, options: RunOptions, provider: Provider, output_dir: Path, stats: Any) -> Dispatcher:
    """The request path of a run (:class:`~fountain.providers.dispatch.Dispatcher`): the response
    cache (``--cache``, else the output folder's), the price table, rate limits, the budget and the
    error-rate stop. The cache is closed again if anything else fails."""
    from fountain.providers.dispatch import Dispatcher

    cache = None
    if not options.no_cache:
        from fountain.providers.cache import ResponseCache

        cache = ResponseCache(Path(options.cache) if options.cache else output_dir / CACHE_FILE)
    try:
        prices = None
        if options.prices is not None:
            from fountain.providers.cost import PriceTable

            prices = PriceTable.load(options.prices)
        return Dispatcher(
            provider,
            cache=cache,
            concurrency=run_concurrency(spec, options, provider.name),
            rpm=options.rpm or spec.model.rpm,
            tpm=options.tpm or spec.model.tpm,
            budget_usd=options.budget_usd,
            prices=prices,
            stats=stats,
            max_error_rate=options.max_error_rate,
        )
    except BaseException:
        if cache is not None:
            cache.close()
        raise
