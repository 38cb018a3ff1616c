"""The plan of a framework run: every check that can be made before a token is spent (names,
rater, iterations, target, real data, privacy budget), and the run's overrides of setup.yaml."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, PrivacyBudgetError, RealDataError
from fountain.run.options import RunOptions
from fountain.spec.overrides import apply_overrides

FRAMEWORKS = ("Gen", "GenLLM", "Filter", "Feedback")
RATERS = ("PE", "RF")
# Filter with a --target and no --iterations stops after this many rounds at most.
DEFAULT_FILTER_ROUNDS = 10
DEFAULT_K = {"PE": 1, "RF": 5}


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
        def finite(v):
            return None if math.isinf(v) else v

        return {
            "sigma": self.sigma,
            "iterations_planned": self.iterations,
            "delta": self.delta,
            "delta_source": self.delta_source,
            "epsilon_budget": finite(self.epsilon_budget),
            "epsilon_planned": finite(self.epsilon_planned),
            "private_records": self.n_private,
        }


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
    edges: tuple[str, ...] = ()  # PE votes cast by these edge services (fountain.edge), not here

    def describe(self) -> str:
        """One line for ``--dry-run`` and logs (numbers only)."""
        text = f"framework {self.framework}"
        if self.framework == "GenLLM":
            text += f" ({self.personas} generated persona(s))"
        if self.framework == "Filter":
            text += f": up to {self.iterations} round(s)" + (f", target {self.target}" if self.target else "")
        if self.framework == "Feedback":
            text += f": {self.iterations} PE iteration(s) after the initial population"
        if self.rater and self.edges:
            text += f"; rater {self.rater} (k = {self.k}) voted by {len(self.edges)} edge service(s)"
        elif self.rater:
            text += f"; rater {self.rater} (k = {self.k}) on {len(self.real or ())} real conversation(s)"
        if self.privacy is not None:
            p = self.privacy
            eps = "inf" if math.isinf(p.epsilon_budget) else f"{p.epsilon_budget:.4g}"
            text += (
                f"; sigma = {p.sigma:.4g}, epsilon {p.epsilon_planned:.4g} of the budget {eps}, delta = {p.delta:.3g}"
            )
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


def plan_framework(spec: Any, options: RunOptions | None = None) -> FrameworkPlan:  # noqa: C901 - complexity debt, listed in docs/architecture.md
    """Check a framework run before any model is called, and plan its privacy budget.

    Reads the real data (``--real-data``) when a rater needs it; raises a
    :class:`~fountain.errors.FountainError` (or :class:`~fountain.errors.PrivacyBudgetError`)
    with a hint for anything wrong. Loads no model.
    """
    from fountain.raters import privacy as accountant

    options = options or RunOptions()
    framework = _resolve_name(
        options.rating.framework or spec.framework or "Gen",
        FRAMEWORKS,
        "framework",
        "--framework" if options.rating.framework else "framework",
    )
    rater_name = options.rating.rater or spec.raters.rater
    rater = (
        _resolve_name(rater_name, RATERS, "rater", "--rater" if options.rating.rater else "raters.rater")
        if rater_name
        else None
    )
    notes: list[str] = []

    if framework in ("Gen", "GenLLM") and rater:
        raise FountainError(
            f"the {framework} framework does not use a rater (--rater {rater})",
            location="--rater" if options.rating.rater else "raters.rater",
            hint="--framework Filter rates and accumulates, --framework Feedback runs "
            "Private Evolution (PE); or drop the rater",
        )
    if framework == "Feedback" and rater != "PE":
        # Name where the value came from: a command-line option, or a key of setup.yaml.
        if rater == "RF":
            raise FountainError(
                "Feedback needs the PE rater; RF cannot steer it (RF is not differentially private)",
                location="--rater" if options.rating.rater else "raters.rater",
                hint="use --rater PE, or --framework Filter --rater RF"
                if options.rating.rater
                else "set raters.rater: PE in setup.yaml, or framework: Filter to rate with RF",
            )
        if options.rating.framework:
            raise FountainError(
                "the Feedback framework (Private Evolution) needs --rater PE",
                location="--framework",
                hint="add --rater PE --real-data FILE --epsilon E",
            )
        locator = spec.locator
        raise FountainError(
            "framework: Feedback in setup.yaml (Private Evolution) needs the PE rater, and none is set",
            location=locator.at(("framework",)) if locator is not None else "framework",
            hint="set raters.rater: PE (with raters.real_data and privacy.epsilon) in "
            "setup.yaml, or pass --rater PE --real-data FILE --epsilon E",
        )

    personas = options.rating.personas
    if personas is not None and framework != "GenLLM":
        raise FountainError(
            "the number of personas only applies to GenLLM, which generates them",
            location="--personas",
            hint="use it with --framework GenLLM",
        )
    if framework == "GenLLM":
        from fountain.generation.enrich import DEFAULT_PERSONAS, MAX_PERSONAS

        personas = DEFAULT_PERSONAS if personas is None else personas
        if not 1 <= personas <= MAX_PERSONAS:
            raise FountainError(
                f"the number of personas must lie between 1 and {MAX_PERSONAS}, got {personas}", location="--personas"
            )

    if options.rating.iterations is not None and framework in ("Gen", "GenLLM"):
        raise FountainError(
            f"{framework} makes one pass: it has no iterations",
            location="--iterations",
            hint="rounds are for --framework Filter or Feedback",
        )
    if options.rating.iterations is not None:
        iterations = options.rating.iterations
    elif framework == "Filter" and not _spec_has(spec, "privacy", "iterations"):
        target_given = options.generation.target is not None or spec.generation.target is not None
        iterations = DEFAULT_FILTER_ROUNDS if target_given else 1
    else:
        iterations = spec.privacy.iterations
    if int(iterations) != iterations or iterations < 1:
        raise FountainError(f"iterations must be a positive integer, got {iterations!r}", location="--iterations")
    iterations = int(iterations)

    target = options.generation.target if options.generation.target is not None else spec.generation.target
    if options.generation.target is not None and framework == "Feedback":
        raise FountainError(
            "Feedback has no target: its dataset is the last population",
            location="--target",
            hint="use --iterations and --seeds-per-direction instead",
        )
    if framework == "Feedback":
        target = None
    if target is not None and target < 1:
        raise FountainError(f"the target must be at least 1, got {target}", location="--target")

    epsilon = options.rating.epsilon if options.rating.epsilon is not None else spec.privacy.epsilon
    if options.rating.epsilon is not None and rater != "PE":
        raise FountainError(
            "a privacy budget applies to the PE rater only"
            + ("; RF is NOT differentially private" if rater == "RF" else ""),
            location="--epsilon",
            hint="use --rater PE (with --framework Feedback or Filter), or drop --epsilon",
        )
    if options.rating.sigma is not None and rater != "PE":
        raise FountainError(
            "sigma is the noise of the PE rater only", location="--sigma", hint="use --rater PE, or drop --sigma"
        )
    if options.rating.delta is not None and rater != "PE":
        raise FountainError(
            "delta is part of the PE rater's privacy budget", location="--delta", hint="use --rater PE, or drop --delta"
        )

    k = (
        options.rating.k
        if options.rating.k is not None
        else (spec.raters.k if _spec_has(spec, "raters", "k") else DEFAULT_K.get(rater or "", 1))
    )
    if k < 1:
        raise FountainError(f"k must be at least 1, got {k}", location="--k")

    edges: tuple[str, ...] = ()
    if options.rating.edge:
        from fountain.edge.client import check_edge_plan

        edges = check_edge_plan(options.rating.edge, framework, rater, options.rating, notes)
        epsilon = spec.privacy.epsilon  # each owner's edge holds its own budget

    # Real data: the CLI's path is relative to the working folder, the spec's to the spec folder.
    real_path: Path | None = None
    real_text = None
    if edges:
        pass
    elif options.rating.real_data is not None:
        if not rater:
            raise FountainError(
                "real data is only read by a rater",
                location="--real-data",
                hint="add --rater PE (differentially private) or --rater RF (not private)",
            )
        real_text = str(options.rating.real_data)
        real_path = Path(options.rating.real_data).expanduser()
    elif spec.raters.real_data and rater:
        real_text = spec.raters.real_data
        real_path = Path(spec.raters.real_data).expanduser()
        if not real_path.is_absolute():
            real_path = Path(spec.folder) / real_path
    if rater and real_path is None and not edges:
        raise RealDataError(
            f"the {rater} rater needs real conversations to compare with",
            location="--real-data",
            hint="pass --real-data FILE (JSONL in a format fountain exports, or a Janus "
            "outputs.json), or set raters.real_data in setup.yaml",
        )
    real = None
    privacy_plan = None
    if rater and not edges:
        from fountain.raters.realdata import load_real_data

        assert real_path is not None  # checked above
        real = load_real_data(real_path, default_category=spec.category)
        in_category = sum(1 for r in real if r.category == spec.category)
        if rater == "RF" and in_category < 2:
            raise RealDataError(
                f"RF needs at least 2 real conversations of the spec's category "
                f"{spec.category!r}; the real data has {in_category}",
                location=str(real_path),
                hint="set metadata.category (or category) of the real records to the spec's category",
            )
        if rater == "PE" and in_category == 0:
            raise RealDataError(
                f"none of the {len(real)} real conversations has the spec's category "
                f"{spec.category!r}: nothing would vote",
                location=str(real_path),
                hint="set metadata.category (or category) of the real records to the spec's category",
            )
        if rater == "RF":
            notes.append("RF is NOT differentially private: its decisions depend on every real conversation")
    if rater == "PE" and not edges:
        if epsilon is None:
            raise PrivacyBudgetError(
                "the PE rater needs a privacy budget",
                location="--epsilon",
                hint="pass --epsilon E (e.g. 4; `fountain privacy --epsilon E "
                "--iterations T --n N` shows the noise it implies), or set "
                "privacy.epsilon in setup.yaml",
            )
        if not epsilon > 0:
            raise PrivacyBudgetError(f"epsilon must be positive, got {epsilon}", location="--epsilon")
        n = len(real or ())
        delta = options.rating.delta if options.rating.delta is not None else spec.privacy.delta
        if delta is not None:
            source = "given"
            if not 0.0 < delta < 1.0:
                raise FountainError(
                    f"delta must lie strictly between 0 and 1, got {delta}",
                    location="--delta",
                    hint="the usual choice is below 1/N",
                )
        else:
            source = "1/(N ln N)"
            delta = accountant.default_delta(n)
        sigma = (
            options.rating.sigma
            if options.rating.sigma is not None
            else accountant.sigma_for(epsilon, iterations, delta)
        )
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
    embedder = options.rating.embedder or spec.raters.embedder

    # The run's settings go into the spec it fingerprints: an output folder holds one framework,
    # one rater and one budget. The keys that differ from setup.yaml are kept in the manifest.
    wanted = {
        "framework": framework,
        "raters.rater": rater,
        "raters.k": k,
        "raters.embedder": embedder,
        "raters.real_data": real_text if rater and not edges else spec.raters.real_data,
        "privacy.epsilon": epsilon if rater == "PE" and not edges else spec.privacy.epsilon,
        "privacy.delta": options.rating.delta if options.rating.delta is not None else spec.privacy.delta,
        "privacy.iterations": iterations if framework in ("Filter", "Feedback") else spec.privacy.iterations,
    }
    overrides = {key: value for key, value in wanted.items() if value != _setting(spec, key)}
    planned = apply_overrides(spec, overrides)
    return FrameworkPlan(
        framework,
        rater,
        planned,
        iterations,
        target,
        k,
        personas,
        embedder,
        selection,
        threshold,
        real_path,
        real,
        privacy_plan,
        notes,
        overrides,
        edges,
    )


def _setting(spec: Any, key: str) -> Any:
    value = spec
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _weak_privacy_notes(n: int, delta: float, delta_source: str, sigma: float) -> list[str]:
    """Warnings for a PE plan whose guarantee or usefulness is weaker than its numbers suggest."""
    notes = []
    if delta_source == "given" and n > 0 and delta >= 1.0 / n:
        # (eps, delta)-DP with delta >= 1/N allows publishing a random private record in full.
        notes.append(
            f"delta = {delta:.3g} is not below 1/N = {1.0 / n:.3g} for {n} private "
            f"conversation(s): such a guarantee allows revealing a whole record; use a "
            f"delta well below 1/N (the default is 1/(N ln N) = "
            f"{1.0 / (n * math.log(n)) if n > 1 else float('nan'):.3g})"
        )
    if n > 0 and sigma > 0 and not math.isinf(sigma) and n < 3 * sigma:
        # Each private conversation casts one vote; noise of this size buries a histogram of N votes.
        notes.append(
            f"only {n} private conversation(s) cast votes against noise of sigma = "
            f"{sigma:.3g} per count: the feedback will be mostly noise (more real data, "
            f"a larger --epsilon or fewer --iterations help)"
        )
    return notes
