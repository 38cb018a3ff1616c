"""The plan of a framework run: every check that can be made before a token is spent (names,
rater, iterations, target, real data, privacy budget), and the run's overrides of setup.yaml."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, PrivacyBudgetError
from fountain.frameworks.plan_checks import (
    FRAMEWORKS,
    RATERS,
    check_pe_only_options,
    framework_and_rater,
    iterations_of,
    k_of,
    load_rated_real_data,
    personas_to_generate,
    real_data_source,
    target_of,
)
from fountain.run.option_groups import RatingOptions
from fountain.run.options import RunOptions
from fountain.spec.overrides import apply_overrides

__all__ = ["FRAMEWORKS", "RATERS", "FrameworkPlan", "PrivacyPlan", "plan_framework"]


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


def plan_framework(spec: Any, options: RunOptions | None = None) -> FrameworkPlan:
    """Check a framework run before any model is called, and plan its privacy budget.

    Reads the real data (``--real-data``) when a rater needs it; raises a
    :class:`~fountain.errors.FountainError` (or :class:`~fountain.errors.PrivacyBudgetError`)
    with a hint for anything wrong. Loads no model. The checks run in a fixed order
    (:mod:`fountain.frameworks.plan_checks`), so a run with several problems names the same first.
    """
    options = options or RunOptions()
    asked = options.rating
    framework, rater = framework_and_rater(spec, asked)
    notes: list[str] = []
    personas = personas_to_generate(framework, asked.personas)
    iterations = iterations_of(spec, framework, asked.iterations, options.generation.target)
    target = target_of(spec, framework, options.generation.target)
    check_pe_only_options(asked, rater)
    epsilon = asked.epsilon if asked.epsilon is not None else spec.privacy.epsilon
    k = k_of(spec, asked.k, rater)
    edges: tuple[str, ...] = ()
    if asked.edge:
        from fountain.edge.client import check_edge_plan

        edges = check_edge_plan(asked.edge, framework, rater, asked, notes)
        epsilon = spec.privacy.epsilon  # each owner's edge holds its own budget
    source = None if edges else real_data_source(spec, asked, rater)
    real = None
    privacy_plan = None
    if source is not None and rater:
        real = load_rated_real_data(spec, rater, source[0], notes)
        if rater == "PE":
            privacy_plan = _privacy_plan(spec, asked, epsilon, iterations, len(real), notes)
    embedder = asked.embedder or spec.raters.embedder
    # The run's settings go into the spec it fingerprints: an output folder holds one framework,
    # one rater and one budget. The keys that differ from setup.yaml are kept in the manifest.
    wanted = {
        "framework": framework,
        "raters.rater": rater,
        "raters.k": k,
        "raters.embedder": embedder,
        "raters.real_data": source[1] if source is not None else spec.raters.real_data,
        "privacy.epsilon": epsilon if privacy_plan is not None else spec.privacy.epsilon,
        "privacy.delta": asked.delta if asked.delta is not None else spec.privacy.delta,
        "privacy.iterations": iterations if framework in ("Filter", "Feedback") else spec.privacy.iterations,
    }
    overrides = {key: value for key, value in wanted.items() if value != _setting(spec, key)}
    return FrameworkPlan(
        framework,
        rater,
        apply_overrides(spec, overrides),
        iterations,
        target,
        k,
        personas,
        embedder,
        spec.raters.selection,
        spec.raters.threshold,
        source[0] if source is not None else None,
        real,
        privacy_plan,
        notes,
        overrides,
        edges,
    )


def _privacy_plan(
    spec: Any, asked: RatingOptions, epsilon: float | None, iterations: int, n: int, notes: list[str]
) -> PrivacyPlan:
    """The PE budget: epsilon checked, delta (given, else 1/(N ln N)), sigma (given, else the
    noise the budget allows); a plan whose epsilon exceeds the budget does not start."""
    from fountain.raters import privacy as accountant

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
    delta = asked.delta if asked.delta is not None else spec.privacy.delta
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
    sigma = asked.sigma if asked.sigma is not None else accountant.sigma_for(epsilon, iterations, delta)
    if sigma < 0 or math.isnan(sigma):
        raise FountainError(f"sigma must be non-negative, got {sigma}", location="--sigma")
    spent = accountant.check_plan(sigma, iterations, delta, epsilon)  # PrivacyBudgetError if over
    if math.isinf(epsilon) or sigma == 0.0:
        notes.append("epsilon = inf: no noise is added and there is NO privacy guarantee")
    notes.extend(_weak_privacy_notes(n, delta, source, sigma))
    return PrivacyPlan(sigma, iterations, delta, source, float(epsilon), spent, n)


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
