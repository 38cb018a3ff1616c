"""The Ray executor's shared limits without Ray: two actors' dispatchers against one
:class:`FlowControl`, reached through a stand-in for a Ray actor handle (``handle.method.remote``)."""

from __future__ import annotations

import asyncio

import pytest

from dispatch_helpers import PRICES, Sleeps, request
from fountain.errors import BudgetExceededError
from fountain.providers.base import Completion
from fountain.run.ray_executor import ClusterDispatcher, ClusterLimiter, FlowControl  # imports no Ray
from fountain.types import Usage


class StandInHandle:
    """NOT Ray: ``handle.name.remote(*args)`` runs ``target.name(*args)`` at once and returns an
    awaitable of its result (calls run one at a time, as a Ray actor's synchronous methods do; a
    caller may drop the awaitable, as with an ObjectRef)."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        method = getattr(self._target, name)

        class _Remote:
            @staticmethod
            def remote(*args):
                future = asyncio.get_running_loop().create_future()
                future.set_result(method(*args))
                return future

        return _Remote


class PricedProvider:
    name = "openai"
    model = "gpt-4o-mini"

    def __init__(self):
        self.calls = 0

    def identity(self):
        return {"provider": self.name, "model": self.model}

    async def complete(self, request):
        self.calls += 1
        return Completion(text="{}", data={}, usage=Usage(1000, 1000), model=self.model)

    async def aclose(self):
        pass


def _actor(flow, budget, sleeps=None):
    limiter = ClusterLimiter(4, flow)
    if sleeps is not None:
        limiter._sleep = sleeps
    provider = PricedProvider()
    return provider, ClusterDispatcher(provider, limiter=limiter, prices=PRICES, flow=flow, budget_usd=budget)


async def test_budget_is_one_ledger_for_both_actors():
    flow = StandInHandle(FlowControl(None, None, budget_usd=0.01))
    (one, first), (two, second) = _actor(flow, 0.01), _actor(flow, 0.01)
    answered = 0
    with pytest.raises(BudgetExceededError, match="on the cluster"):
        for i in range(10):
            await (first if i % 2 == 0 else second).complete(request(i, max_tokens=1000))
            answered += 1
    # $0.003 an answer: three fit in $0.01 for the two together (a budget each would allow six)
    assert answered == 3 and one.calls + two.calls == 3
    assert flow._target.spent_usd == pytest.approx(0.009) and flow._target.reserved_usd == 0


async def test_rpm_is_one_bucket_for_both_actors():
    flow = StandInHandle(FlowControl(60, None, None))
    sleeps = Sleeps()
    (_, first), (_, second) = _actor(flow, None, sleeps), _actor(flow, None, sleeps)
    await asyncio.gather(*(d.complete(request(i)) for i, d in enumerate([first, second] * 3)))
    # 60 rpm with a burst of one: the six requests of the two actors wait 0, 1, 2, ... 5 s
    assert flow._target.granted == 6
    assert sorted(round(s) for s in sleeps.requested) == [1, 2, 3, 4, 5]


async def test_tpm_bucket_is_corrected_with_the_real_usage():
    flow = StandInHandle(FlowControl(None, 60_000, None))
    limiter = ClusterLimiter(4, flow)
    limiter._sleep = Sleeps()
    permit = await limiter.acquire(5_000)  # reserved 5,000 from a bucket of 1,000 a second
    level = flow._target.tokens.level
    limiter.release(permit, used_tokens=2_000)  # used 2,000: 3,000 come back
    assert flow._target.tokens.level == pytest.approx(level + 3_000, abs=50)
