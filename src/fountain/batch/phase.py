"""The batch phase of ``fountain run --batch``: rounds of record, submit, poll and collect.

Each round runs every task of the plan through the generation
:class:`~fountain.generation.worker.Worker` against a :class:`~.recorder.RecordingModel`:
tasks whose requests are all in the response cache finish (an accepted seed then plans its
derivations, a failed validation makes its re-ask), the others stop at their first request
without an answer, which is recorded. The recorded requests not already in a job are submitted
(intent in the ledger first, then the create call, then the job id), ended jobs are collected
into the response cache, and the next round starts. The phase is done when no task is waiting
for an answer: the normal run then writes the dataset from the cache.

On restart, a job whose intent was written but not its id is looked up by its metadata
(OpenAI ``metadata.fountain_job``, Gemini ``displayName``); found, it is adopted; not found, the
intent is given up (no job was created) and its requests are submitted again. Anthropic keeps
no metadata on a batch: fountain refuses to go on until the user checks, rather than pay twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.batch.base import BatchAPI, JobStatus, make_batch_api
from fountain.batch.jobs import LIMITS, MAX_SUBMISSIONS, BatchLimits, JobRecord, Ledger, split
from fountain.batch.recorder import Pending, RecordingModel
from fountain.errors import BudgetExceededError, FountainError, OutputError, ProviderError, TransientProviderError
from fountain.generation.plan import SEED, Task, derivation_tasks, seed_tasks
from fountain.generation.requests import resolve_mode, spec_fingerprint
from fountain.generation.worker import Worker
from fountain.providers.base import Request
from fountain.providers.cache import ResponseCache
from fountain.providers.cost import Price, PriceTable, estimate_tokens
from fountain.providers.dispatch import DEFAULT_COMPLETION_ESTIMATE, cache_identity
from fountain.run.options import RunOptions, effective_spec, output_folder
from fountain.run.outputs import CACHE_FILE
from fountain.spec.model import Spec
from fountain.types import Sample, Usage

BATCH_DISCOUNT = 0.5  # batch APIs bill half the direct price
DEFAULT_POLL_S = 30.0
MAX_BLIPS = 10  # --batch-wait: consecutive failed polls before the run stops


@dataclass
class BatchReport:
    """Where the batch phase stands: ``done`` when every task has its answers (or gave up)."""

    done: bool
    output_dir: Path
    submitted: int = 0  # requests submitted by this invocation
    collected: int = 0  # answers collected by this invocation
    waiting: int = 0  # requests in jobs not ended yet
    failures: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class BatchPhase:
    """One invocation of the batch phase over one output folder (whose lock the caller holds)."""

    def __init__(
        self,
        spec: Spec,
        options: RunOptions,
        provider: Any,
        *,
        api: BatchAPI | None = None,
        limits: BatchLimits | None = None,
        wait: bool = False,
        poll_s: float = DEFAULT_POLL_S,
        say: Callable[[str], None] | None = None,
    ):
        self.source = spec
        self.spec = effective_spec(spec, options)
        self.options = options
        self.provider = provider
        self.output_dir = output_folder(self.spec, options)
        mode = resolve_mode(self.spec, provider.name, options.generation.mode)
        if mode != "json":
            raise FountainError(
                f"--batch needs the json generation mode (this run would use {mode}: one request per "
                "utterance, a batch job each)",
                location="--mode",
                hint="run with --mode json, or without --batch",
            )
        if options.budget.no_cache:
            raise FountainError(
                "--batch keeps the answers in the response cache: it cannot run with --no-cache",
                location="--no-cache",
                hint="drop --no-cache",
            )
        self.api = api if api is not None else make_batch_api(provider)
        self.limits = limits or LIMITS[self.api.name]
        self.wait = wait
        self.poll_s = poll_s
        self.say = say or (lambda text: None)
        self.identity = cache_identity(provider)
        self.ledger = Ledger(self.output_dir)
        self.fingerprint = spec_fingerprint(spec)
        prices = PriceTable.load(options.budget.prices)
        self.price: Price | None = prices.lookup(provider.name, getattr(provider, "model", None))
        if options.budget.budget_usd is not None and self.price is None:
            raise FountainError(
                f"--budget needs a price for {provider.name} model {getattr(provider, 'model', None)!r}, and none is known",
                hint="add the model to a price table and pass it with --prices FILE, or run without --budget",
            )
        self.cache: ResponseCache | None = None
        self.report = BatchReport(done=False, output_dir=self.output_dir)
        self._blips = 0

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> BatchReport:
        path = Path(self.options.budget.cache) if self.options.budget.cache else self.output_dir / CACHE_FILE
        self._check_folder()
        self.cache = ResponseCache(path)
        try:
            await self._recover()
            missing = await self._simulate()
            while True:
                try:
                    collected = await self._collect(missing)
                except TransientProviderError as error:
                    if not self.wait or self._blips >= MAX_BLIPS:
                        raise
                    self._blips += 1  # a network blip while waiting: try again at the next poll
                    self.say(f"batch: {error.message} (trying again at the next poll)")
                    await asyncio.sleep(self.poll_s)
                    continue
                self._blips = 0
                if collected:
                    # New answers: tasks go further (derivations, re-asks). Only then is the plan
                    # run again: a poll that finds nothing ended costs one request per job.
                    missing = await self._simulate()
                    continue
                in_flight = self.ledger.in_flight()
                new = {
                    key: request
                    for key, request in missing.items()
                    if key not in in_flight and self.ledger.submissions.get(key, 0) < MAX_SUBMISSIONS
                }
                if new:
                    await self._submit(new)
                if not self.ledger.pending():
                    self.report.done = True
                    break
                self.report.waiting = len(self.ledger.in_flight())
                if not self.wait:
                    break
                self._progress()
                await asyncio.sleep(self.poll_s)
        finally:
            self.cache.close()
            await self.api.aclose()
        self.report.failures = self.ledger.failures()
        self.report.summary = self.ledger.summary()
        return self.report

    def _check_folder(self) -> None:
        """Before anything is submitted: the folder's run (if any) may be resumed by this spec
        and provider, and no job of another spec version is waiting there."""
        from fountain.providers.cache import public_identity
        from fountain.run.resume import check_resume

        check_resume(
            self.output_dir, self.source, self.options.export.resume, provider=public_identity(self.provider.identity())
        )
        others = [job for job in self.ledger.pending() if job.fingerprint and job.fingerprint != self.fingerprint]
        if others:
            raise OutputError(
                f"{len(others)} batch job(s) of another version of the spec are still waiting in this folder",
                location=str(self.ledger.path),
                hint="restore the spec and run again to collect them, or cancel them with `fountain cancel "
                "OUTPUT` and write the new version elsewhere with --output",
            )

    def _progress(self) -> None:
        jobs = self.ledger.pending()
        states: dict[str, int] = {}
        for job in jobs:
            states[job.state] = states.get(job.state, 0) + 1
        done = sum(int(job.counts.get("completed") or job.counts.get("succeeded") or 0) for job in jobs)
        text = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        self.say(
            f"batch: {len(jobs)} job(s) waiting ({text}); {done:,} of {len(self.ledger.in_flight()):,} "
            f"requests answered so far; next poll in {self.poll_s:g} s"
        )

    # --- rounds ----------------------------------------------------------------------------------

    async def _simulate(self) -> dict[str, Request]:
        """Run every task as far as the cache answers it; the requests it could not answer."""
        assert self.cache is not None
        model = RecordingModel(self.cache, self.identity)
        gen = self.spec.generation
        worker = Worker(
            self.spec,
            model,
            provider_name=self.provider.name,
            provider_model=str(getattr(self.provider, "model", "") or ""),
            mode="json",
            seed=self.options.generation.seed,
            fingerprint=self.fingerprint,
        )
        queue: list[tuple[Task, Sample | None]] = [
            (task, None) for task in seed_tasks(self.spec.seed_directions, gen.seeds_per_direction, self.spec.personas)
        ]
        accepted = 0
        while queue:
            if gen.target and accepted >= gen.target:
                break  # enough accepted conversations: the rest of the plan is not requested
            task, parent = queue.pop(0)
            try:
                outcome = await worker.execute(task, parent)
            except Pending:
                continue
            accepted += outcome.sample is not None
            if outcome.sample is not None and task.kind == SEED and gen.derivations_per_direction > 0:
                sample = outcome.sample
                for follow in derivation_tasks(
                    sample.id,
                    len(sample.turns),
                    task.order,
                    self.spec.derivational_directions,
                    gen.derivations_per_direction,
                    persona=sample.provenance.persona,
                    max_prefix_turns=gen.max_prefix_turns,
                    conversation_type=gen.type,
                ):
                    queue.append((follow, sample))
        return model.missing

    async def _recover(self) -> None:
        """Settle jobs whose intent was written but whose id was not (a kill during the create)."""
        for job in self.ledger.pending():
            if job.remote_id is not None:
                continue
            if not getattr(self.api, "can_find", True):
                raise FountainError(
                    f"batch job {job.job} ({len(job.keys):,} requests) was being created when an earlier "
                    f"run stopped, and {self.api.name} batches cannot be looked up to tell whether it exists",
                    location=str(self.ledger.path),
                    hint="look for a batch created at "
                    f"{job.created_at or 'that time'} in the provider's console and cancel it if it is there; "
                    "then `fountain cancel OUTPUT --forget-unconfirmed` lets the next run submit those "
                    "requests again (nothing is resubmitted until then, so nothing is paid twice)",
                )
            remote = await self.api.find(job.job)
            if remote is not None:
                self.ledger.append({"event": "created", "job": job.job, "remote_id": remote, "state": "found"})
                self.say(f"batch: found job {job.job} ({remote}) created by an earlier run")
            else:
                self.ledger.append({"event": "abandoned", "job": job.job, "why": "no job with this name exists"})

    async def _submit(self, new: dict[str, Request]) -> None:
        keys = list(new)
        if self.options.budget.budget_usd is not None:
            keys = self._within_budget(keys, new)
        lines = [(key, self.api.line(key, new[key])) for key in keys]
        for chunk in split(lines, self.limits):
            job_id = self.ledger.new_job_id()
            digest = hashlib.sha256(b"".join(line for _, line in chunk)).hexdigest()
            estimate = sum(self._estimate(new[key]) for key, _ in chunk)
            self.ledger.append(
                {
                    "event": "intent",
                    "job": job_id,
                    "provider": self.api.name,
                    "file_hash": digest,
                    "keys": [key for key, _ in chunk],
                    "estimate_usd": round(estimate, 6),
                    "identity": self.identity,  # for `fountain cancel` (never a secret)
                    "api_key_env": getattr(self.provider, "_key_env", None),
                    "spec": self.fingerprint,
                }
            )
            try:
                remote = await self.api.submit(job_id, chunk)
            except TransientProviderError:
                raise  # the job may exist: the intent stays, the next run looks it up
            except ProviderError as error:
                # A definite refusal (4xx): no job was created, the requests are free again.
                self.ledger.append({"event": "abandoned", "job": job_id, "why": error.message[:300]})
                raise
            self.ledger.append({"event": "created", "job": job_id, "remote_id": remote, "state": "submitted"})
            self.report.submitted += len(chunk)
            self.say(f"batch: submitted job {job_id} ({remote}) with {len(chunk):,} requests")

    def _estimate(self, request: Request) -> float:
        if self.price is None:
            return 0.0
        completion = request.sampling.max_tokens or DEFAULT_COMPLETION_ESTIMATE
        return self.price.cost(Usage(estimate_tokens(request.prompt_text()), completion)) * BATCH_DISCOUNT

    def _within_budget(self, keys: list[str], new: dict[str, Request]) -> list[str]:
        budget = float(self.options.budget.budget_usd or 0.0)
        room = budget - self.ledger.spent_usd() - self.ledger.reserved_usd()
        chosen: list[str] = []
        for key in keys:
            cost = self._estimate(new[key])
            if cost > room:
                break
            room -= cost
            chosen.append(key)
        if not chosen and not self.ledger.pending():
            raise BudgetExceededError(
                f"stopped before exceeding the budget of ${budget:.2f}: ${self.ledger.spent_usd():.4f} spent "
                f"by batch jobs so far, and the next {len(keys):,} requests would cost up to "
                f"${sum(self._estimate(new[k]) for k in keys):.4f} at batch prices",
                hint="everything collected so far is saved; run the same command again with a higher --budget",
            )
        return chosen

    async def _collect(self, missing: dict[str, Request]) -> bool:
        """Poll the jobs not collected yet; put the answers of ended ones into the cache."""
        collected_any = False
        for job in self.ledger.pending():
            if job.remote_id is None:
                continue
            status = await self.api.poll(job.remote_id)
            if status.state != job.state or status.counts != job.counts:
                self.ledger.append({"event": "state", "job": job.job, "state": status.state, "counts": status.counts})
            if status.ended:
                await self._collect_job(job, status, missing)
                collected_any = True
        return collected_any

    async def _collect_job(self, job: JobRecord, status: JobStatus, missing: dict[str, Request]) -> None:
        """An ended job's answers into the cache, then its ``collected`` line (failed keys with
        their reasons, tokens and cost at batch prices)."""
        assert self.cache is not None and job.remote_id is not None
        failed: dict[str, str] = {}
        answered: set[str] = set()
        usage = Usage()
        keys = set(job.keys)
        for result in await self.api.results(job.remote_id):
            if result.key not in keys:
                continue  # not this job's
            request = missing.get(result.key)
            if request is None:
                # Already in the cache: stored by a collection a kill interrupted. Paid all the
                # same, so counted in this job's usage and cost.
                hit = self.cache.get(result.key) if result.error is None else None
                usage = usage + (hit.usage if hit is not None else Usage())
                continue
            answered.add(result.key)
            if result.error is not None:
                failed[result.key] = result.error
                continue
            try:
                completion = self.api.completion(result.body, request)
            except ProviderError as error:
                failed[result.key] = f"unreadable answer: {error.message}"[:200]
                continue
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
                failed[result.key] = f"unreadable answer: {type(error).__name__}"
                continue
            self.cache.put(result.key, request, completion, identity=self.identity)
            self.report.collected += 1
            usage = usage + completion.usage
        for key in keys - answered:
            if key in missing:
                failed[key] = f"no result (job {status.state})"
        cost = self.price.cost(usage) * BATCH_DISCOUNT if self.price is not None else 0.0
        self.ledger.append(
            {
                "event": "collected",
                "job": job.job,
                "state": status.state,
                "counts": status.counts,
                "failed": failed,
                "cost_usd": round(cost, 6),
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            }
        )


async def run_batch_phase(spec: Spec, options: RunOptions, provider: Any, **kwargs: Any) -> BatchReport:
    """Run the batch phase once (see :class:`BatchPhase`)."""
    return await BatchPhase(spec, options, provider, **kwargs).run()
