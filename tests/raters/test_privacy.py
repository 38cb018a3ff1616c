import json
import math

import pytest

from fountain.errors import FountainError, PrivacyBudgetError
from fountain.raters.privacy import (
    PrivacyLedger,
    check_plan,
    default_delta,
    epsilon_for,
    gdp_delta,
    gdp_mu,
    log_ndtr,
    plan_budget,
    sigma_for,
)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --- published pairs (PE paper / Aug-PE) ---------------------------------------------------------


def test_published_pair_large_n():
    n = 1_939_290
    delta = default_delta(n)
    assert delta == pytest.approx(1.0 / (n * math.log(n)))
    assert epsilon_for(15.34, 10, delta) == pytest.approx(1.00, rel=0.01)


def test_published_pair_small_sigma():
    assert epsilon_for(2.0 * math.sqrt(2.0), 5, 1e-5) == pytest.approx(3.34, rel=0.01)


def test_published_pairs_inverse():
    n = 1_939_290
    assert sigma_for(1.00, 10, default_delta(n)) == pytest.approx(15.34, rel=0.01)
    assert sigma_for(3.34, 5, 1e-5) == pytest.approx(2.0 * math.sqrt(2.0), rel=0.01)


@pytest.mark.parametrize("epsilon", [1e-3, 0.1, 1.0, 4.0, 10.0, 100.0, 1000.0])
@pytest.mark.parametrize("iterations,delta", [(1, 1e-5), (7, 1e-6), (50, 3.5e-8), (3, 1e-300)])
def test_sigma_round_trips(epsilon, iterations, delta):
    sigma = sigma_for(epsilon, iterations, delta)
    assert 0 < sigma < math.inf
    assert epsilon_for(sigma, iterations, delta) == pytest.approx(epsilon, rel=1e-6)


def test_delta_matches_the_formula_where_direct_evaluation_is_safe():
    for eps, mu in [(0.5, 0.3), (1.0, 1.0), (3.0, 2.0), (0.0, 0.7)]:
        direct = _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)
        assert gdp_delta(eps, mu) == pytest.approx(direct, rel=1e-9)


def test_the_solution_satisfies_the_delta_equation():
    sigma, T, delta = 3.0, 4, 1e-6
    eps = epsilon_for(sigma, T, delta)
    assert gdp_delta(eps, gdp_mu(sigma, T)) == pytest.approx(delta, rel=1e-6)
    # Spending a little less epsilon must need a larger delta (delta decreases in epsilon).
    assert gdp_delta(eps * 0.99, gdp_mu(sigma, T)) > delta


def test_monotone_in_sigma_and_iterations():
    delta = 1e-6
    eps = [epsilon_for(s, 5, delta) for s in (0.5, 1, 2, 4, 8, 16)]
    assert all(a > b for a, b in zip(eps, eps[1:]))
    eps_t = [epsilon_for(2.0, t, delta) for t in (1, 2, 5, 10, 100)]
    assert all(a < b for a, b in zip(eps_t, eps_t[1:]))


def test_edge_cases_infinity_and_zero():
    assert epsilon_for(0.0, 3, 1e-5) == math.inf  # no noise: no privacy
    assert sigma_for(math.inf, 3, 1e-5) == 0.0  # infinite budget: no noise
    assert epsilon_for(math.inf, 3, 1e-5) == 0.0
    # Extreme but finite inputs neither overflow nor underflow.
    assert math.isfinite(epsilon_for(1e-4, 1, 1e-5))
    assert epsilon_for(1e6, 1, 1e-300) < 1e-3


def test_invalid_inputs_raise_fountain_errors():
    with pytest.raises(FountainError):
        epsilon_for(1.0, 0, 1e-5)
    with pytest.raises(FountainError):
        epsilon_for(1.0, 3, 1.5)
    with pytest.raises(FountainError):
        sigma_for(0.0, 3, 1e-5)
    with pytest.raises(FountainError):
        sigma_for(-1.0, 3, 1e-5)
    with pytest.raises(FountainError):
        default_delta(1)


def test_log_ndtr_against_erfc_and_tail_asymptotics():
    for x in (-25.0, -10.0, -1.0, 0.0, 0.5, 3.0):
        assert log_ndtr(x) == pytest.approx(math.log(_phi(x)), rel=1e-12, abs=1e-300)
    # Right tail: log(1 - q) ~ -q for the tiny upper-tail mass q; the naive log(Phi) loses it.
    assert log_ndtr(8.0) == pytest.approx(-0.5 * math.erfc(8.0 / math.sqrt(2.0)), rel=1e-12)
    # Continuity where the implementation switches to the asymptotic series.
    assert log_ndtr(-30.0 - 1e-9) == pytest.approx(log_ndtr(-30.0 + 1e-9), rel=1e-9)
    # Far tail: dominated by -x^2/2 - log(-x) - log(sqrt(2 pi)).
    x = -1e4
    assert log_ndtr(x) == pytest.approx(-x * x / 2 - math.log(-x) - 0.5 * math.log(2 * math.pi), rel=1e-12)


def test_log_ndtr_against_scipy():
    special = pytest.importorskip("scipy.special")
    for i in range(-700, 130):
        x = i / 10.0
        assert log_ndtr(x) == pytest.approx(float(special.log_ndtr(x)), rel=1e-12, abs=1e-300)


# --- planning and the ledger ----------------------------------------------------------------------


def test_plan_budget_and_check_plan():
    delta = default_delta(5000)
    sigma = plan_budget(2.0, delta, 6)
    assert check_plan(sigma, 6, delta, 2.0) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(PrivacyBudgetError) as info:
        check_plan(sigma, 7, delta, 2.0)  # one more iteration than planned
    assert "budget" in str(info.value) and info.value.hint
    with pytest.raises(PrivacyBudgetError):
        check_plan(sigma * 0.9, 6, delta, 2.0)


def test_ledger_tracks_cumulative_epsilon():
    delta, sigma, T = 1e-6, 4.0, 5
    ledger = PrivacyLedger(delta)
    for t in range(1, T + 1):
        entry = ledger.record(sigma)
        assert entry.iteration == t
        assert entry.epsilon == pytest.approx(epsilon_for(sigma, t, delta), rel=1e-9)
    epsilons = [e.epsilon for e in ledger.entries]
    assert all(a < b for a, b in zip(epsilons, epsilons[1:]))
    data = ledger.to_dict()
    json.dumps(data)  # manifest-ready
    assert data["epsilon"] == pytest.approx(epsilon_for(sigma, T, delta))
    assert [row["iteration"] for row in data["iterations"]] == [1, 2, 3, 4, 5]


def test_ledger_composes_different_sigmas():
    ledger = PrivacyLedger(1e-5)
    ledger.record(2.0)
    ledger.record(4.0)
    mu = math.sqrt(1 / 4 + 1 / 16)
    assert ledger.mu == pytest.approx(mu)
    assert ledger.epsilon == pytest.approx(epsilon_for(1 / mu, 1, 1e-5), rel=1e-9)


def test_ledger_refuses_to_exceed_budget():
    delta, sigma = 1e-5, 3.0
    budget = epsilon_for(sigma, 4, delta)
    ledger = PrivacyLedger(delta, epsilon_budget=budget)
    assert ledger.preview(sigma) < budget
    for _ in range(4):
        ledger.record(sigma)
    with pytest.raises(PrivacyBudgetError):
        ledger.record(sigma)
    assert len(ledger.entries) == 4  # the refused iteration is not recorded


def test_ledger_without_noise_has_no_guarantee():
    ledger = PrivacyLedger(1e-5)
    ledger.record(0.0)
    assert ledger.epsilon == math.inf
    assert ledger.to_dict()["epsilon"] is None  # JSON has no infinity
    with pytest.raises(PrivacyBudgetError):
        PrivacyLedger(1e-5, epsilon_budget=10.0).record(0.0)
