"""One --budget for two dispatchers (the run's and its judge's): each counts the other's spend."""

from __future__ import annotations

import pytest

from dispatch_helpers import PRICES, Sleeps, request
from fountain.errors import BudgetExceededError
from fountain.providers.dispatch import Dispatcher
from fountain.testing.scripted import ScriptedProvider
from fountain.types import Usage


def _pair(budget: float) -> tuple[Dispatcher, Dispatcher, ScriptedProvider, ScriptedProvider]:
    run_provider, judge_provider = (
        ScriptedProvider(usage=Usage(10, 100_000)),
        ScriptedProvider(usage=Usage(10, 100_000)),
    )
    run = Dispatcher(run_provider, sleep=Sleeps(), prices=PRICES, budget_usd=budget)
    judge = Dispatcher(judge_provider, sleep=Sleeps(), prices=PRICES, budget_usd=budget)
    run.budget_peers, judge.budget_peers = (judge,), (run,)
    return run, judge, run_provider, judge_provider


async def test_the_judges_spend_counts_against_the_runs_budget_and_back():
    # Each request costs at most $0.2 (100_000 completion tokens at $2 per million).
    run, judge, run_provider, judge_provider = _pair(0.5)
    await run.complete(request(0, max_tokens=100_000))
    await judge.complete(request(1, max_tokens=100_000))
    with pytest.raises(BudgetExceededError):  # $0.4 spent between them; $0.2 more would pass $0.5
        await run.complete(request(2, max_tokens=100_000))
    with pytest.raises(BudgetExceededError):
        await judge.complete(request(3, max_tokens=100_000))
    assert len(run_provider.calls) == 1 and len(judge_provider.calls) == 1
    assert run.stats.cost_usd + judge.stats.cost_usd <= 0.5


async def test_without_peers_each_dispatcher_counts_only_itself():
    run, judge, _, _ = _pair(0.5)
    run.budget_peers = judge.budget_peers = ()
    for i in range(2):
        await run.complete(request(i, max_tokens=100_000))
        await judge.complete(request(10 + i, max_tokens=100_000))
    assert run.stats.cost_usd + judge.stats.cost_usd == pytest.approx(0.8, abs=0.01)
