"""``--executor ray``: the plan's tasks run on Ray actors that wrap the generation worker.

The engine (:mod:`fountain.run.engine`) keeps everything that is the driver's: the plan, the
journals (written as each result arrives, so a killed driver resumes by task id), the manifest,
and afterwards dedup, PE/RF and the report. Only ``Worker.execute(task, parent) -> Outcome`` moves
out: :class:`RayExecutor` sends each task to the least busy :class:`GenerationActor`, an async Ray
actor with its own provider and dispatcher (cache, retries, validation re-asks) running many
tasks at once.

Why actors and not Ray Data: the plan is not a dataset known in advance (a seed's derivations
are planned when it is accepted, a Filter round or a target stops early), and each actor holds a
provider with open connections, a loaded model or a GPU engine that must outlive a task; Ray
Data's ``map_batches`` over an actor pool wants a static input and would batch tasks that should
stream. Actors get a fraction of a CPU (:data:`ACTOR_CPUS`): the work is waiting on HTTP.

Limits for the whole cluster, not per actor: one :class:`FlowControl` actor (named
``fountain-flow-<id>``) holds the requests- and tokens-per-minute buckets and the budget ledger.
Every request asks it for its turn (:class:`ClusterLimiter`) and reserves its estimated cost before
it is sent (:class:`ClusterDispatcher`), then settles the real cost.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from typing import Any

from fountain.errors import BudgetExceededError, MissingDependencyError, ProviderError
from fountain.generation.plan import Task
from fountain.generation.worker import Outcome, Worker
from fountain.providers.base import Completion, Request
from fountain.providers.cost import estimate_tokens
from fountain.providers.dispatch import DEFAULT_COMPLETION_ESTIMATE, Dispatcher
from fountain.providers.throttle import AdaptiveLimiter, Permit, TokenBucket
from fountain.types import Sample, Usage

DEFAULT_ACTORS = 2
ACTOR_CPUS = 0.25  # I/O-bound: whole-CPU actors would starve Ray's own tasks on a small machine
_STAT_FIELDS = ("requests", "completed", "cache_hits", "retries", "rate_limited", "failed", "unpriced")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "--executor ray needs Ray, which is not installed",
            hint="pip install 'fountain[ray]' (or run without --executor ray)",
        ) from None
    return ray


class FlowControl:
    """The cluster's shared limits, as one Ray actor (its methods run one at a time)."""

    def __init__(self, rpm: float | None, tpm: float | None, budget_usd: float | None, spent_usd: float = 0.0):
        self.requests = TokenBucket(rpm) if rpm else None
        self.tokens = TokenBucket(tpm) if tpm else None
        self.budget_usd = budget_usd
        self.spent_usd = float(spent_usd)
        self.reserved_usd = 0.0
        self.granted = 0

    def acquire(self, tokens: float = 0.0) -> float:
        """Take one request (and ``tokens``) from the buckets; returns how long to wait first."""
        self.granted += 1
        wait = self.requests.reserve(1) if self.requests is not None else 0.0
        if self.tokens is not None and tokens:
            wait = max(wait, self.tokens.reserve(tokens))
        return wait

    def adjust_tokens(self, delta: float) -> None:
        """A request used ``delta`` more tokens than it reserved (negative: fewer, they come back)."""
        if self.tokens is not None and delta:
            self.tokens.adjust(delta)

    def reserve(self, estimate_usd: float) -> tuple[bool, float, float]:
        """Reserve a request's estimated cost: (granted, spent, in flight)."""
        if self.budget_usd is not None and self.spent_usd + self.reserved_usd + estimate_usd > self.budget_usd:
            return False, self.spent_usd, self.reserved_usd
        self.reserved_usd += estimate_usd
        return True, self.spent_usd, self.reserved_usd

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
        self.spent_usd += actual_usd

    def state(self) -> dict[str, float]:
        return {"granted": self.granted, "spent_usd": self.spent_usd, "reserved_usd": self.reserved_usd}


class ClusterLimiter(AdaptiveLimiter):
    """This actor's concurrency (adaptive, as in a local run), then the cluster's rate buckets."""

    def __init__(self, concurrency: int, flow: Any):
        super().__init__(concurrency)
        self.flow = flow

    async def acquire(self, tokens: float = 0.0) -> Permit:
        permit = await super().acquire(0.0)
        try:
            wait = await self.flow.acquire.remote(tokens)
            if wait > 0:
                await self._sleep(wait)
        except BaseException:
            self.release(permit, success=False)
            raise
        permit.tokens = tokens
        return permit

    def release(
        self,
        permit: Permit,
        *,
        used_tokens: float | None = None,
        rate_limited: bool = False,
        success: bool | None = None,
    ) -> None:
        """As the local limiter; the real token count corrects the cluster's tpm bucket (a
        fire-and-forget call: ``.remote()`` does not wait)."""
        if used_tokens is not None and permit.tokens and not permit.released:
            self.flow.adjust_tokens.remote(used_tokens - permit.tokens)
        super().release(permit, used_tokens=used_tokens, rate_limited=rate_limited, success=success)


class ClusterDispatcher(Dispatcher):
    """A dispatcher whose budget is the cluster's: each request reserves its estimated cost in the
    :class:`FlowControl` ledger before it is sent and settles what it really cost."""

    def __init__(self, *args: Any, flow: Any, budget_usd: float | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.flow = flow
        self.cluster_budget_usd = budget_usd

    async def _send(self, request: Request, key: str | None) -> Completion:
        price = self._price
        if self.cluster_budget_usd is None or price is None:
            return await super()._send(request, key)
        completion_tokens = request.sampling.max_tokens or self._largest_completion or DEFAULT_COMPLETION_ESTIMATE
        estimate = price.cost(Usage(estimate_tokens(request.prompt_text()), completion_tokens))
        granted, spent, in_flight = await self.flow.reserve.remote(estimate)
        if not granted:
            self.stopped = BudgetExceededError(
                f"stopped before exceeding the budget of ${self.cluster_budget_usd:.2f}: ${spent:.4f} spent "
                f"so far on the cluster, ${in_flight:.4f} in flight, and the next request would cost up "
                f"to ${estimate:.4f}",
                hint="everything done so far is saved; run the same command again with a higher --budget",
            )
            raise self.stopped
        actual = 0.0
        try:
            completion = await super()._send(request, key)
            actual = price.cost(completion.usage)
            return completion
        finally:
            await self.flow.settle.remote(estimate, actual)


class GenerationActor:
    """One Ray actor: a provider, a dispatcher and a file-free worker, running tasks concurrently."""

    def __init__(self, spec: Any, options: Any, worker_args: dict[str, Any], flow: Any, settings: dict[str, Any]):
        from fountain.providers.cost import PriceTable
        from fountain.run.engine import make_provider

        self.provider = make_provider(spec, options)
        cache = None
        if settings.get("cache_path"):
            from fountain.providers.cache import ResponseCache

            cache = ResponseCache(settings["cache_path"])  # SQLite in WAL mode: shared by the actors
        self.dispatcher = ClusterDispatcher(
            self.provider,
            cache=cache,
            limiter=ClusterLimiter(int(settings["concurrency"]), flow),
            prices=PriceTable.load(options.budget.prices),
            max_error_rate=options.budget.max_error_rate,
            flow=flow,
            budget_usd=settings.get("budget_usd"),
        )
        self.dispatcher.track_tokens = bool(settings.get("tpm")) or settings.get("budget_usd") is not None
        self.worker = Worker(spec, self.dispatcher, **worker_args)
        self._reported: dict[str, Any] = {"usage": Usage(), "cost_usd": 0.0, "errors": Counter(), "retries_v": 0}
        for name in _STAT_FIELDS:
            self._reported[name] = 0

    async def execute(self, task: Task, parent: Sample | None) -> dict[str, Any]:
        """``{"outcome": Outcome}`` or ``{"error": ProviderError, "stopped": bool}``, with the
        counters added since the last call (``stats``)."""
        try:
            outcome = await self.worker.execute(task, parent)
        except ProviderError as error:
            return {"error": error, "stopped": self.dispatcher.stopped is error, "stats": self._delta()}
        return {"outcome": outcome, "stats": self._delta()}

    def _delta(self) -> dict[str, Any]:
        stats, seen = self.dispatcher.stats, self._reported
        delta: dict[str, Any] = {name: getattr(stats, name) - seen[name] for name in _STAT_FIELDS}
        delta["usage"] = {
            "prompt_tokens": stats.usage.prompt_tokens - seen["usage"].prompt_tokens,
            "completion_tokens": stats.usage.completion_tokens - seen["usage"].completion_tokens,
        }
        delta["cost_usd"] = stats.cost_usd - seen["cost_usd"]
        delta["errors"] = dict(stats.errors - seen["errors"])
        delta["validation_retries"] = self.worker.retries - seen["retries_v"]
        # When this actor sent its first request, as wall-clock time (monotonic clocks of two
        # processes do not compare): the driver's provider span starts at the earliest one.
        delta["first_sent_wall"] = (
            time.time() - (time.monotonic() - stats.first_sent) if stats.first_sent is not None else None
        )
        for name in _STAT_FIELDS:
            seen[name] = getattr(stats, name)
        seen["usage"], seen["cost_usd"] = stats.usage, stats.cost_usd
        seen["errors"], seen["retries_v"] = Counter(stats.errors), self.worker.retries
        return delta

    def close(self) -> None:
        if self.dispatcher.cache is not None:
            self.dispatcher.cache.close()


class RayExecutor:
    """Runs the engine's tasks on :class:`GenerationActor` actors (what ``--executor ray`` makes)."""

    def __init__(self, engine: Any, local: Worker):
        ray = import_ray()
        options = engine.options
        self.ray = ray
        self.engine = engine
        self.local = local  # for provider_error rejects, which need no model
        if not ray.is_initialized():
            ray.init(address=options.execution.ray_address, include_dashboard=False, log_to_driver=False)
        count = int(options.execution.ray_actors or DEFAULT_ACTORS)
        per_actor = max(1, math.ceil(engine.concurrency() / count))
        rpm = options.budget.rpm or engine.spec.model.rpm
        tpm = options.budget.tpm or engine.spec.model.tpm
        self.flow_name = f"fountain-flow-{uuid.uuid4().hex[:12]}"
        self.flow = (
            ray.remote(FlowControl)
            .options(name=self.flow_name, num_cpus=0)
            .remote(rpm, tpm, options.budget.budget_usd, engine.stats.cost_usd)
        )
        cache = getattr(engine.dispatcher, "cache", None)
        settings = {
            "concurrency": per_actor,
            "cache_path": str(cache.path) if cache is not None else None,
            "budget_usd": options.budget.budget_usd,
            "tpm": tpm,
        }
        worker_args = {
            "provider_name": local.provider_name,
            "provider_model": local.provider_model,
            "mode": local.mode,
            "seed": local.seed,
            "fingerprint": local.fingerprint,
            "scenario": local.scenario,
            "iteration": local.iteration,
        }
        resources: dict[str, Any] = {"num_cpus": ACTOR_CPUS}
        if local.provider_name == "vllm":
            resources["num_gpus"] = 1  # one vLLM engine per GPU actor
        actor_class = ray.remote(GenerationActor).options(max_concurrency=per_actor, **resources)
        self.actors = [actor_class.remote(engine.spec, options, worker_args, self.flow, settings) for _ in range(count)]
        self.load = [0] * count
        self.validation_retries = 0

    @property
    def retries(self) -> int:
        return self.validation_retries

    async def execute(self, task: Task, parent: Sample | None) -> Outcome:
        index = min(range(len(self.actors)), key=self.load.__getitem__)
        self.load[index] += 1
        try:
            result = await self.actors[index].execute.remote(task, parent)
        finally:
            self.load[index] -= 1
        self._merge(result["stats"])
        if "error" in result:
            error = result["error"]
            if result["stopped"] and getattr(self.engine.dispatcher, "stopped", None) is None:
                self.engine.dispatcher.stopped = error  # the engine then stops the whole run
            raise error
        outcome: Outcome = result["outcome"]
        return outcome

    def provider_error(self, task: Task, error: ProviderError) -> Outcome:
        return self.local.provider_error(task, error)

    def _merge(self, delta: dict[str, Any]) -> None:
        stats = self.engine.stats
        for name in _STAT_FIELDS:
            setattr(stats, name, getattr(stats, name) + delta[name])
        if delta.get("usage"):
            usage = Usage.from_dict(delta["usage"])
            stats.usage = stats.usage + usage
            stats.session_usage = stats.session_usage + usage
        stats.cost_usd += delta["cost_usd"]
        stats.errors.update(delta["errors"])
        self.validation_retries += delta["validation_retries"]
        now = time.monotonic()
        if delta.get("first_sent_wall") is not None:
            sent = now - (time.time() - delta["first_sent_wall"])
            stats.first_sent = sent if stats.first_sent is None else min(stats.first_sent, sent)
        if delta["completed"]:
            stats.last_answered = now

    def flow_state(self) -> dict[str, float]:
        return dict(self.ray.get(self.flow.state.remote()))

    def close(self) -> None:
        ray = self.ray
        for actor in self.actors:
            try:
                ray.get(actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - an actor already gone has nothing to close
                pass
            ray.kill(actor)
        ray.kill(self.flow)
        # A Ray this run started stays up until the process exits (Ray shuts it down then): the
        # rounds of a framework run (Filter, Feedback) each start actors, not a whole Ray.


def start_executor(engine: Any, local: Worker) -> RayExecutor:
    """The executor ``engine.options.execution.executor`` names (only ``ray`` besides the local one)."""
    return RayExecutor(engine, local)
