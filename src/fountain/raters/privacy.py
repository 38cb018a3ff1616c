"""Gaussian differential privacy (GDP) accountant for Private Evolution.

Each PE iteration releases one noisy histogram per category. Every private sample votes in exactly
one category with a vote vector of L2 norm 1 (k votes of weight 1/sqrt(k)), so one iteration is
the Gaussian mechanism with sensitivity 1 and noise sigma: it is (1/sigma)-GDP. T iterations
compose to mu-GDP with ``mu = sqrt(T) / sigma`` (Dong, Roth & Su 2019), and mu-GDP implies
(epsilon, delta)-DP for every epsilon with

    delta(epsilon) = Phi(-epsilon/mu + mu/2) - e^epsilon * Phi(-epsilon/mu - mu/2).

``epsilon_for`` and ``sigma_for`` solve this equation by bisection. Everything is computed in log
space (``log Phi`` through ``math.erfc`` and an asymptotic series far in the tail), so huge epsilon
or tiny delta neither overflow nor underflow. Only the standard library is needed: ``fountain
privacy`` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fountain.errors import FountainError, PrivacyBudgetError

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# Relative slack when comparing a planned epsilon with the budget: root finding is exact to far
# better than this, so a plan built with plan_budget() never fails its own check.
_BUDGET_SLACK = 1e-9


def log_ndtr(x: float) -> float:
    """``log Phi(x)`` for the standard normal CDF, accurate in both tails."""
    if x > 0.0:
        # Phi(x) = 1 - Phi(-x) with Phi(-x) <= 1/2: log1p keeps the digits.
        return math.log1p(-0.5 * math.erfc(x / math.sqrt(2.0)))
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # Far left tail: Phi(x) = phi(x)/|x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + ...). At x <= -30 the
    # terms kept make the series exact to double precision.
    z = 1.0 / (x * x)
    series = 1.0 - z * (1.0 - 3.0 * z * (1.0 - 5.0 * z * (1.0 - 7.0 * z * (1.0 - 9.0 * z))))
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(series)


def log_delta(epsilon: float, mu: float) -> float:
    """``log delta(epsilon)`` of a mu-GDP mechanism (``-inf`` where delta is 0 to precision)."""
    if mu <= 0.0:
        return -math.inf
    if math.isinf(mu):
        return 0.0
    log_a = log_ndtr(-epsilon / mu + mu / 2.0)
    log_b = epsilon + log_ndtr(-epsilon / mu - mu / 2.0)
    diff = log_b - log_a  # always < 0 mathematically
    if diff >= 0.0:
        return -math.inf  # rounding: the two terms agree to every digit, delta ~ 0
    return log_a + math.log(-math.expm1(diff))


def gdp_delta(epsilon: float, mu: float) -> float:
    """``delta(epsilon)`` of a mu-GDP mechanism."""
    return math.exp(log_delta(epsilon, mu))


def gdp_mu(sigma: float, iterations: int) -> float:
    """mu of T compositions of the sensitivity-1 Gaussian mechanism with noise sigma."""
    if sigma == 0.0:
        return math.inf
    return math.sqrt(iterations) / sigma


def default_delta(n: int) -> float:
    """The default delta for ``n`` private records: ``1 / (n * ln n)`` (smaller than 1/n)."""
    if n < 2:
        raise FountainError(
            f"cannot derive a default delta from {n} private record(s)",
            hint="the default delta 1/(N*ln N) needs N >= 2; give --delta explicitly",
        )
    return 1.0 / (n * math.log(n))


def _check_delta(delta: float) -> None:
    if not (0.0 < delta < 1.0) or math.isnan(delta):
        raise FountainError(
            f"delta must lie strictly between 0 and 1, got {delta!r}",
            hint="a common choice is 1/(N*ln N) for N private records",
        )


def _check_iterations(iterations: int) -> None:
    if int(iterations) != iterations or iterations < 1:
        raise FountainError(f"iterations must be a positive integer, got {iterations!r}")


def epsilon_for_mu(mu: float, delta: float) -> float:
    """The smallest epsilon such that a mu-GDP mechanism is (epsilon, delta)-DP."""
    _check_delta(delta)
    if mu == 0.0:
        return 0.0
    if math.isinf(mu):
        return math.inf
    target = math.log(delta)
    if log_delta(0.0, mu) <= target:
        return 0.0
    # delta(epsilon) decreases in epsilon: bracket the root, then bisect.
    lo, hi = 0.0, max(1.0, mu * mu)
    while log_delta(hi, mu) > target:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if log_delta(mid, mu) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return hi


def mu_for_epsilon(epsilon: float, delta: float) -> float:
    """The largest mu such that a mu-GDP mechanism is (epsilon, delta)-DP."""
    _check_delta(delta)
    if math.isinf(epsilon):
        return math.inf
    if epsilon < 0.0 or math.isnan(epsilon):
        raise FountainError(f"epsilon must be positive, got {epsilon!r}")
    target = math.log(delta)
    # delta(epsilon; mu) increases in mu: bisect on log(mu) over a bracket that certainly
    # holds the root.
    lo, hi = 1e-12, 1.0
    if log_delta(epsilon, lo) > target:
        return 0.0  # even negligible mu leaks more than delta: only no release works
    while log_delta(epsilon, hi) <= target:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(300):
        mid = math.sqrt(lo * hi)
        if log_delta(epsilon, mid) <= target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * lo:
            break
    return lo


def epsilon_for(sigma: float, iterations: int, delta: float) -> float:
    """epsilon spent by ``iterations`` PE iterations with noise ``sigma`` at ``delta``.

    ``sigma == 0`` (no noise) gives ``inf``; ``sigma == inf`` gives 0.
    """
    _check_iterations(iterations)
    if sigma < 0.0 or math.isnan(sigma):
        raise FountainError(f"sigma must be non-negative, got {sigma!r}")
    return epsilon_for_mu(gdp_mu(sigma, iterations), delta)


def sigma_for(epsilon: float, iterations: int, delta: float) -> float:
    """The smallest noise sigma such that ``iterations`` iterations spend at most ``epsilon``.

    ``epsilon == inf`` gives 0 (no noise, no privacy).
    """
    _check_iterations(iterations)
    if epsilon <= 0.0 or math.isnan(epsilon):
        raise FountainError(f"epsilon must be positive, got {epsilon!r}", hint="epsilon = 0 would need infinite noise")
    mu = mu_for_epsilon(epsilon, delta)
    if math.isinf(mu):
        return 0.0
    if mu == 0.0:
        return math.inf
    return math.sqrt(iterations) / mu


def plan_budget(epsilon: float, delta: float, iterations: int) -> float:
    """sigma for a run of ``iterations`` PE iterations that spends exactly the budget ``epsilon``."""
    return sigma_for(epsilon, iterations, delta)


def check_plan(sigma: float, iterations: int, delta: float, epsilon_budget: float) -> float:
    """Return the epsilon a plan spends; raise PrivacyBudgetError if it exceeds the budget."""
    spent = epsilon_for(sigma, iterations, delta)
    if spent > epsilon_budget * (1.0 + _BUDGET_SLACK):
        needed = sigma_for(epsilon_budget, iterations, delta) if epsilon_budget > 0 else math.inf
        raise PrivacyBudgetError(
            f"the plan spends epsilon = {spent:.4g} (sigma = {sigma:.4g}, {iterations} iterations, "
            f"delta = {delta:.3g}), more than the budget epsilon = {epsilon_budget:.4g}",
            hint=f"use sigma >= {needed:.4g}, fewer iterations, or a larger --epsilon "
            "(`fountain privacy` computes either from the other)",
        )
    return spent


@dataclass(frozen=True)
class LedgerEntry:
    """Privacy spent after one PE iteration (cumulative)."""

    iteration: int
    sigma: float
    mu: float
    epsilon: float
    delta: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "sigma": self.sigma,
            "mu": _finite(self.mu),
            "epsilon": _finite(self.epsilon),
            "delta": self.delta,
        }


def _finite(value: float) -> float | None:
    # JSON has no infinity: a manifest says null where there is no guarantee at all.
    return None if math.isinf(value) else value


@dataclass
class PrivacyLedger:
    """Running account of the privacy a PE run has spent, one entry per iteration.

    Iterations may use different sigmas: GDP composes as ``mu^2 = sum(1 / sigma_t^2)``.
    With ``epsilon_budget`` set, :meth:`record` refuses an iteration that would exceed it.
    """

    delta: float
    epsilon_budget: float | None = None
    entries: list[LedgerEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_delta(self.delta)

    @property
    def mu(self) -> float:
        return self.entries[-1].mu if self.entries else 0.0

    @property
    def epsilon(self) -> float:
        """epsilon spent so far (0 before the first iteration)."""
        return self.entries[-1].epsilon if self.entries else 0.0

    def _mu_after(self, sigma: float) -> float:
        if sigma < 0.0 or math.isnan(sigma):
            raise FountainError(f"sigma must be non-negative, got {sigma!r}")
        if sigma == 0.0 or math.isinf(self.mu):
            return math.inf
        return math.sqrt(self.mu**2 + 1.0 / sigma**2)

    def preview(self, sigma: float) -> float:
        """epsilon that would be spent after one more iteration with ``sigma``."""
        return epsilon_for_mu(self._mu_after(sigma), self.delta)

    def record(self, sigma: float) -> LedgerEntry:
        """Account one more iteration with noise ``sigma``; raises PrivacyBudgetError over budget."""
        mu = self._mu_after(sigma)
        epsilon = epsilon_for_mu(mu, self.delta)
        if self.epsilon_budget is not None and epsilon > self.epsilon_budget * (1.0 + _BUDGET_SLACK):
            raise PrivacyBudgetError(
                f"iteration {len(self.entries) + 1} would raise epsilon to {epsilon:.4g}, "
                f"over the budget {self.epsilon_budget:.4g}",
                hint="stop here, or plan sigma for the full number of iterations with "
                "`fountain privacy --epsilon E --iterations T`",
            )
        entry = LedgerEntry(len(self.entries) + 1, sigma, mu, epsilon, self.delta)
        self.entries.append(entry)
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``privacy`` section."""
        return {
            "accountant": "gaussian-dp",
            "delta": self.delta,
            "epsilon_budget": self.epsilon_budget,
            "epsilon": _finite(self.epsilon),
            "mu": _finite(self.mu),
            "iterations": [e.to_dict() for e in self.entries],
        }
