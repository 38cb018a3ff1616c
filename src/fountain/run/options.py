"""What a run is told besides the spec (:class:`RunOptions`), what it did (:class:`RunResult`),
and the spec and output folder the options make of a spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.providers.base import Provider
from fountain.run.option_groups import (
    GROUPS,
    BudgetOptions,
    ExecutionOptions,
    ExportOptions,
    GenerationOptions,
    LLMOptions,
    RatingOptions,
)
from fountain.run.outputs import CACHE_FILE
from fountain.types import Sample

if TYPE_CHECKING:  # pragma: no cover
    from fountain.providers.dispatch import Dispatcher
    from fountain.spec.model import Spec

DEFAULT_CONCURRENCY = {"local": 1, "fake": 8}
DEFAULT_API_CONCURRENCY = 16


#: Each flat option name (the CLI's, the manifest's) and the group that holds it.
GROUP_OF: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}
# What the manifest leaves out of a session's options (display only).
_NOT_RECORDED = frozenset({"quiet", "progress"})


@dataclass(frozen=True, init=False)
class RunOptions:
    """Everything a run can be told besides the spec, in groups by concern (see
    :mod:`fountain.run.option_groups`). ``None`` means: the spec's value, else the default. The
    CLI's ``run`` command fills one of these; library users build it directly, with groups or
    with the flat names the CLI and the manifest use::

        RunOptions(provider="fake", output="out", seed=1)
        RunOptions(llm=LLMOptions(provider="fake"), export=ExportOptions(output="out"))

    A flat name given next to its group overrides the group's value. Stages read the groups
    (``options.llm.provider``); reading a flat name (``options.provider``) still works."""

    export: ExportOptions = ExportOptions()
    llm: LLMOptions = LLMOptions()
    generation: GenerationOptions = GenerationOptions()
    budget: BudgetOptions = BudgetOptions()
    execution: ExecutionOptions = ExecutionOptions()
    rating: RatingOptions = RatingOptions()

    def __init__(
        self,
        *,
        export: ExportOptions | None = None,
        llm: LLMOptions | None = None,
        generation: GenerationOptions | None = None,
        budget: BudgetOptions | None = None,
        execution: ExecutionOptions | None = None,
        rating: RatingOptions | None = None,
        **flat: Any,
    ) -> None:
        given = {
            "export": export,
            "llm": llm,
            "generation": generation,
            "budget": budget,
            "execution": execution,
            "rating": rating,
        }
        for name, cls in GROUPS.items():
            group: Any = given[name] if given[name] is not None else cls()
            values = {key: flat.pop(key) for key in list(flat) if GROUP_OF.get(key) == name}
            object.__setattr__(self, name, replace(group, **values) if values else group)
        for f in fields(self):  # an option outside the groups (a later addition) is set as it is
            if f.name in GROUPS:
                continue
            if f.name in flat:
                value = flat.pop(f.name)
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                value = f.default
            object.__setattr__(self, f.name, value)
        if flat:
            raise TypeError(f"RunOptions() got unexpected keyword argument(s): {', '.join(sorted(flat))}")

    if not TYPE_CHECKING:  # runtime only: in-tree code reads the groups, and mypy holds it to that

        def __getattr__(self, name: str) -> Any:
            """A flat name (``options.provider``) reads its group's value (compatibility)."""
            group = self.__dict__.get(GROUP_OF.get(name, ""))
            if group is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            return getattr(group, name)

    def with_(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (flat names or whole groups) applied."""
        current: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        return RunOptions(**{**current, **changes})

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name (groups unfolded), as the CLI and the manifest name them."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in GROUPS:
                out.update({g.name: getattr(value, g.name) for g in fields(value)})
            else:
                out[f.name] = value
        return out

    def record(self) -> dict[str, Any]:
        """The options as written into the manifest's run history: flat names, as every earlier
        version wrote them (paths as text, no secrets; unset options left out)."""
        out = {}
        for key, value in self.flat().items():
            if value is None or value == () or key in _NOT_RECORDED:
                continue  # an empty tuple is a repeatable option left out (--allow-key-env)
            out[key] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> RunOptions:
        """The options a manifest recorded (:meth:`record`, of this version or an earlier one).
        Names this version does not know are left out; JSON lists become tuples again."""
        known = set(GROUP_OF) | {f.name for f in fields(cls) if f.name not in GROUPS}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in known}
        return cls(**values)


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
    # The turn counts of the accepted seeds in the journals this round left (each id once), from
    # the engine's index: what the end of a run tallies, without reading the journals again.
    seed_turns: tuple[int, ...] | None = None


def effective_spec(spec: Spec, options: RunOptions) -> Spec:
    """``spec`` with the run's overrides of the generation settings applied."""
    gen = spec.generation
    asked = options.generation
    changes: dict[str, Any] = {}
    for name in (
        "seeds_per_direction",
        "derivations_per_direction",
        "max_prefix_turns",
        "max_retries",
        "target",
        "mode",
    ):
        value = getattr(asked, name)
        if value is not None:
            changes[name] = value
    if asked.max_turns is not None:
        changes["max_turns"] = asked.max_turns
        if asked.min_turns is None and gen.min_turns > asked.max_turns:
            changes["min_turns"] = asked.max_turns
    if asked.min_turns is not None:
        changes["min_turns"] = asked.min_turns
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
    if options.export.output is not None:
        return Path(options.export.output)
    folder = getattr(getattr(spec, "output", None), "folder", None) or "output"
    path = Path(folder)
    return path if path.is_absolute() else Path(spec.folder) / path


def dataset_format(spec: Spec, options: RunOptions) -> str:
    """The dataset's format: ``--format``, else the spec's ``output.format``, else ``messages``."""
    return options.export.format or getattr(getattr(spec, "output", None), "format", None) or "messages"


def make_provider(spec: Spec, options: RunOptions) -> Provider:
    """The provider a run uses: CLI options > environment > the spec's model block > local."""
    from fountain.providers import create_provider, resolve_provider_config

    llm = options.llm
    name = llm.provider
    if llm.replay is not None:
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
        model=llm.model,
        base_url=llm.base_url,
        allow_key_envs=llm.allow_key_env,
        base_urls=llm.base_urls,
        timeout_s=llm.timeout,
        structured_output=llm.structured_output,
    )
    if llm.replay is not None:
        config = replace(config, replay=str(llm.replay))
    return create_provider(config)


def run_concurrency(spec: Spec, options: RunOptions, provider_name: str) -> int:
    """Requests in flight at once: ``--concurrency``, else the spec's, else the provider's default."""
    value = options.execution.concurrency or spec.model.concurrency
    if value is None:
        value = DEFAULT_CONCURRENCY.get(provider_name, DEFAULT_API_CONCURRENCY)
    return max(1, int(value))


def make_dispatcher(spec: Spec, options: RunOptions, provider: Provider, output_dir: Path, stats: Any) -> Dispatcher:
    """The request path of a run (:class:`~fountain.providers.dispatch.Dispatcher`): the response
    cache (``--cache``, else the output folder's), the price table, rate limits, the budget and the
    error-rate stop. The cache is closed again if anything else fails."""
    from fountain.providers.dispatch import Dispatcher

    budget = options.budget
    cache = None
    if not budget.no_cache:
        from fountain.providers.cache import ResponseCache

        cache = ResponseCache(Path(budget.cache) if budget.cache else output_dir / CACHE_FILE)
    try:
        prices = None
        if budget.prices is not None:
            from fountain.providers.cost import PriceTable

            prices = PriceTable.load(budget.prices)
        return Dispatcher(
            provider,
            cache=cache,
            concurrency=run_concurrency(spec, options, provider.name),
            rpm=budget.rpm or spec.model.rpm,
            tpm=budget.tpm or spec.model.tpm,
            budget_usd=budget.budget_usd,
            prices=prices,
            stats=stats,
            max_error_rate=budget.max_error_rate,
        )
    except BaseException:
        if cache is not None:
            cache.close()
        raise
