"""One round of one spec into one output folder: resume, schedule, journal, manifest.

:class:`Engine` ``.run()`` (a framework round, :class:`fountain.frameworks.rounds.RoundEngine`,
drives it) generates into an output folder:

1. decide whether the folder is a new run or a resumable one (:func:`fountain.run.resume.check_resume`)
   and index the journals a previous run left (``seeds.jsonl``, ``derivations.jsonl``,
   ``rejects.jsonl``): finished tasks are skipped;
2. run the seed tasks (:mod:`fountain.generation.plan`) with ``concurrency`` asyncio workers, each
   task through the file-free :class:`~fountain.generation.worker.Worker`; every accepted seed
   immediately plans its derivation tasks;
3. journal each outcome as it comes (append-only, group commit);
4. at the end (or when the run stops) the engine hands what the round did to
   :func:`fountain.run.finish.finish_round` (a :class:`~fountain.run.finish.RoundEnd`): the
   journals are rewritten in plan order and ``manifest.json`` records what happened. A round
   never exports: the framework runner (:mod:`fountain.frameworks.runner`, what `fountain run`
   and :func:`fountain.generate` call) rates the round's samples and exports the dataset once.

Memory does not grow with the run: accepted samples live in the journals, and the engine keeps an
index of where each one is (plus what planning needs); a derivation's parent is read back from its
journal when its task runs, and the final rewrite streams line by line.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError, ProviderError
from fountain.generation.plan import DERIVATION, SEED, Task, derivation_tasks, seed_tasks
from fountain.generation.requests import resolve_mode, spec_fingerprint
from fountain.generation.validation_pool import make_validator
from fountain.generation.worker import PROVIDER_ERROR, Outcome, Worker
from fountain.providers.base import Provider
from fountain.run import judging  # light: the judge itself is imported only when a run has one
from fountain.run.finish import RoundEnd, finish_round
from fountain.run.journal import Journal, RecordReader
from fountain.run.options import (  # make_provider: re-exported (the runner, batch)
    RunOptions,
    RunResult,
    dataset_format,
    make_dispatcher,
    make_provider,
    output_folder,
    run_concurrency,
)
from fountain.run.outputs import (
    DERIVATIONS,
    DERIVATIONS_FILE,
    JOURNALS,
    REJECTS_FILE,
    SEEDS,
    SEEDS_FILE,
)
from fountain.run.samples import SampleIndex
from fountain.run.stopping import nothing_accepted_error, raise_if_stopped
from fountain.spec.directions import distinct_directions
from fountain.types import Usage

if TYPE_CHECKING:  # pragma: no cover
    from fountain.providers.dispatch import Dispatcher, RunStats
    from fountain.run.manifest import Manifest
    from fountain.spec.model import Spec

__all__ = ["Engine", "RunOptions", "RunResult", "make_provider", "output_folder"]


class Engine:
    """One round of one spec into one output folder, as a framework run drives it
    (:class:`fountain.frameworks.rounds.RoundEngine`): the journals and the manifest, never the
    dataset; a completed round leaves the manifest ``running`` for the runner to complete."""

    def __init__(self, spec: Spec, options: RunOptions, provider: Provider, *, source_spec: Any = None):
        self.spec = spec
        self._reserve = 0  # derivations a pending seed holds in the progress total
        self.source_spec = source_spec if source_spec is not None else spec
        self.options = options
        self.provider = provider
        self.gen = spec.generation
        self.type = self.gen.type
        self.mode = resolve_mode(spec, provider.name, options.generation.mode)
        self.seed = options.generation.seed
        self.max_retries = max(0, self.gen.max_retries)
        self.output_dir = output_folder(spec, options)
        self.roleplay: Any = None
        if self.mode == "turns":
            from fountain.generation.roleplay import Roleplay

            self.roleplay = Roleplay.from_spec(spec)
        self.samples = SampleIndex()  # id -> Sample, read back from the journals on demand
        self.rejects: dict[str, tuple[str | None, int, int]] = {}  # id -> (reason, offset, length) in rejects.jsonl
        self.order: dict[str, tuple[Any, ...]] = {}
        self.planned_derivations = 0
        self.warnings: list[str] = []
        self.stop_error: FountainError | None = None
        self.crash: BaseException | None = None
        self._seen_parents: set[str] = set()
        # Set by fountain.frameworks before the run: the GenLLM scenario given to every prompt,
        # and the iteration (Filter round, Feedback iteration) written into each provenance.
        self.scenario = ""
        self.iteration = 0
        self.worker: Worker | None = None
        self.judge: Any = None  # fountain.run.judging.RunJudge when the run has a judge
        # What runs the tasks besides the local asyncio workers (--executor ray): anything with
        # Worker's execute() and provider_error(), and close(); None: the local Worker itself.
        self.executor: Any = None

    @property
    def retries(self) -> int:
        if self.executor is not None:
            return int(self.executor.retries)
        return self.worker.retries if self.worker is not None else 0

    def _make_worker(self) -> Worker:
        worker = Worker(
            self.spec,
            self.dispatcher,
            provider_name=self.provider.name,
            provider_model=str(getattr(self.provider, "model", "") or ""),
            mode=self.mode,
            seed=self.seed,
            fingerprint=spec_fingerprint(self.source_spec),
            roleplay=self.roleplay,
            scenario=self.scenario,
            iteration=self.iteration,
            on_retry=self.progress.on_retry,
        )
        # Where json answers are validated: in the event loop, or in processes (not under Ray).
        execution = self.options.execution
        processes = execution.validation_processes if (execution.executor or "local") == "local" else 0
        worker.validator = make_validator(worker.rules, processes, provider=self.provider.name, mode=self.mode)
        return worker

    def _check_executor(self) -> None:
        """An unknown ``--executor``, or Ray not installed, is an error before the run starts."""
        name = self.options.execution.executor or "local"
        if name == "local":
            return
        if name != "ray":
            raise FountainError(f"unknown executor {name!r}", location="--executor", hint="local or ray")
        from fountain.run.ray_executor import import_ray

        import_ray()

    def _start_executor(self, worker: Worker) -> Any:
        """The executor ``--executor`` names (the local one is the asyncio workers of ``_run``)."""
        from fountain.run.ray_executor import start_executor

        return start_executor(self, worker)

    def _accepted_count(self) -> int:
        return len(self.samples)

    # --- scheduling ------------------------------------------------------------------------------

    # Hooks for fountain.frameworks (rounds, PE variations, GenLLM enrichment); the defaults are
    # a plain run.
    async def prepare(self) -> None:
        """Called once the manifest and dispatcher exist, before anything is planned."""

    def plan_seeds(self) -> list[Task]:
        """The seed tasks of this run, in plan order."""
        return seed_tasks(self.spec.seed_directions, self.gen.seeds_per_direction, self.spec.personas)

    def plan_extra(self) -> list[Task]:
        """Tasks besides the seeds and their derivations (their parents must be accepted samples
        of the output folder); sorted after everything else in the journals."""
        return []

    def _derivations_per_seed(self) -> int:
        """The most derivation tasks one seed can lead to (every prefix x distinct direction)."""
        if self.gen.derivations_per_direction <= 0:
            return 0
        directions = len(distinct_directions(self.spec.derivational_directions))
        return self.spec.prefix_limit * directions * self.gen.derivations_per_direction

    def _plan_derivations(self, parent_id: str, n_turns: int, persona: str | None) -> list[Task]:
        if parent_id in self._seen_parents or self.gen.derivations_per_direction <= 0:
            return []
        self._seen_parents.add(parent_id)
        parent_order = self.order.get(parent_id, (1, 10**9))[1:]
        tasks = derivation_tasks(
            parent_id,
            n_turns,
            tuple(parent_order),
            self.spec.derivational_directions,
            self.gen.derivations_per_direction,
            persona=persona,
            max_prefix_turns=self.gen.max_prefix_turns,
            conversation_type=self.type,
        )
        for task in tasks:
            self.order.setdefault(task.id, (2, *task.order))
        self.planned_derivations += len(tasks)
        return tasks

    def _done(self, task_id: str) -> bool:
        if task_id in self.samples:
            return True
        reject = self.rejects.get(task_id)
        return reject is not None and reject[0] != PROVIDER_ERROR

    def _target_reached(self) -> bool:
        target = self.gen.target
        return target is not None and target != 0 and self._accepted_count() >= target

    def _record(self, outcome: Outcome) -> list[Task]:
        """Journal an outcome; returns the tasks it makes possible (a seed's derivations)."""
        task = outcome.task
        if outcome.sample is not None:
            sample = outcome.sample
            if task.kind == SEED:
                offset, length = self.seeds_journal.append(sample.to_record())
                self.samples.add(sample, SEEDS, offset, length)
            else:
                offset, length = self.derivations_journal.append(sample.to_record())
                self.samples.add(sample, DERIVATIONS, offset, length)
            self.rejects.pop(sample.id, None)  # an earlier provider_error is now superseded
            self.progress.on_accepted(task.kind, outcome.completion_tokens)
            if task.kind == SEED:
                return self._plan_derivations(sample.id, len(sample.turns), sample.provenance.persona)
            return []
        assert outcome.reject is not None
        offset, length = self.rejects_journal.append(outcome.reject)
        self.rejects[task.id] = (outcome.reject["reason"], offset, length)
        self.progress.on_rejected(outcome.reject["reason"], outcome.completion_tokens)
        return []

    def _record_utterances(self, outcome: Outcome) -> None:
        """Turn-by-turn utterances asked again: each a rejects.jsonl line (after the task's own)."""
        for retried in outcome.retried:
            offset, length = self.rejects_journal.append(retried)
            self.rejects[retried["id"]] = (retried["reason"], offset, length)

    def _stopped(self) -> bool:
        return self.stop_error is not None or self.crash is not None

    def _forget(self, task: Task) -> None:
        """A task that is not recorded: a seed's reserve of derivations leaves the progress total."""
        if task.kind == SEED and self._reserve:
            self.progress.add_total(-self._reserve)

    async def _worker(self, queue: asyncio.Queue[Task]) -> None:
        while True:
            task = await queue.get()
            try:
                if self._stopped() or self._done(task.id) or self._target_reached():
                    self._forget(task)  # never run
                    continue
                try:
                    parent = self.samples.get(task.parent_id) if task.parent_id else None
                    if task.kind == DERIVATION and parent is None:
                        raise RuntimeError(f"derivation {task.id} has no parent {task.parent_id}")
                    assert self.worker is not None
                    outcome = await (self.executor or self.worker).execute(task, parent)
                    if self.judge is not None and outcome.sample is not None:
                        outcome = await self.judge.review(outcome, parent)
                except ProviderError as error:
                    if getattr(self.dispatcher, "stopped", None) is error or _is_fatal(error):
                        self.stop_error = error
                        continue
                    # One request failed for good (after the dispatcher's retries): reject this
                    # task with the reason, keep going; a resume tries it again.
                    assert self.worker is not None
                    outcome = self.worker.provider_error(task, error)
                except FountainError as error:
                    self.stop_error = error
                    continue
                if outcome.sample is not None and self._target_reached():
                    self._forget(task)  # in flight when the target was reached (its answer stays cached)
                    continue
                queued = 0
                follows = self._record(outcome)
                self._record_utterances(outcome)
                for follow in follows:
                    if not self._done(follow.id):
                        queue.put_nowait(follow)
                        queued += 1
                reserved = self._reserve if task.kind == SEED else 0
                if queued != reserved:
                    self.progress.add_total(queued - reserved)
            except asyncio.CancelledError:
                raise
            except FountainError as error:  # e.g. a journal that cannot be written
                self.stop_error = error
            except Exception as error:  # noqa: BLE001 - a bug: stop cleanly, save, then re-raise
                self.crash = error
            finally:
                queue.task_done()

    # --- the run ---------------------------------------------------------------------------------

    def _load_previous(self) -> None:
        """Index the journals a previous session left (streamed: one record in memory at a time)."""
        self.warnings.extend(self.samples.load_journals(self.output_dir, self.rejects))

    def _make_dispatcher(self, stats: RunStats) -> Dispatcher:
        return make_dispatcher(self.spec, self.options, self.provider, self.output_dir, stats)

    def concurrency(self) -> int:
        return run_concurrency(self.spec, self.options, self.provider.name)

    async def run(self) -> RunResult:
        """Generate into the output folder, holding its lock (one run per folder at a time)."""
        from fountain.run.lock import output_lock

        with output_lock(self.output_dir):
            return await self._run()

    async def _run(self) -> RunResult:
        started = time.monotonic()
        self._check_executor()  # before anything is written: a missing Ray leaves the folder as it was
        manifest = await self._begin()
        self.manifest = manifest
        from fountain.run.progress import Progress

        self.progress = Progress(
            enabled=self.options.execution.progress, quiet=self.options.execution.quiet, stats=self.stats
        )
        await self.prepare()
        self.worker = self._make_worker()
        if (self.options.execution.executor or "local") != "local":
            try:
                self.executor = self._start_executor(self.worker)
            except BaseException:
                self._close_cache()
                raise
        queue: asyncio.Queue[Task] = asyncio.Queue()
        pending = self._pending_tasks()
        for task in pending:
            queue.put_nowait(task)
        # The plan goes into the manifest now, so `fountain status` can tell what a killed run has
        # left (derivations are planned as seeds are accepted: this is the plan known so far).
        manifest.counts.update(
            {"seeds_requested": self.seeds_requested, "derivations_planned": self.planned_derivations}
        )
        manifest.write(self.output_dir)
        self._open_journals()
        self._start_progress(pending)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.concurrency())]
        interrupted = False
        try:
            await queue.join()
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            result = await self._end(workers, started, interrupted)
        raise_if_stopped(self)
        return result

    # --- the run's steps -----------------------------------------------------------------------

    async def _begin(self) -> Manifest:
        """The resume decision, the stats, the dispatcher and the journals a previous session left;
        then the manifest, begun and written (returned). The cache, the price table and the
        journals are checked before the manifest is touched: a bad --cache/--prices or a damaged
        journal leaves the folder as it was."""
        from fountain.providers.cache import public_identity
        from fountain.providers.dispatch import RunStats
        from fountain.run.manifest import Manifest
        from fountain.run.resume import check_resume

        identity = public_identity(self.provider.identity())
        decision = check_resume(self.output_dir, self.source_spec, self.options.export.resume, provider=identity)
        self.warnings.extend(decision.notes)
        if decision.resuming and decision.manifest is not None:
            manifest = decision.manifest
            stats = RunStats.resumed(Usage.from_dict(manifest.usage), manifest.cost_usd)
        else:
            manifest = Manifest.for_spec(self.source_spec, provider=identity, output_dir=self.output_dir)
            stats = RunStats()
        self.stats = stats
        self.dispatcher = self._make_dispatcher(stats)
        try:
            self._load_previous()
            self.judge = await judging.attach(self, decision, manifest)  # None without a judge
            manifest.begin(
                "resume" if decision.resuming else "start",
                provider=identity,
                options={**self.options.record(), "mode": self.mode},
            )
            manifest.write(self.output_dir)  # before any journal: a folder with journals has a manifest
        except BaseException:
            self._close_cache()
            raise
        return manifest

    def _close_cache(self) -> None:
        cache = getattr(self.dispatcher, "cache", None)
        if cache is not None:
            cache.close()

    def _pending_tasks(self) -> list[Task]:
        """Every task still to run, in order: the planned seeds, the derivations of the seeds
        accepted before, the extra tasks of a subclass (each not done yet)."""
        seeds = self.plan_seeds()
        for task in seeds:
            self.order[task.id] = (1, *task.order)
        pending = [t for t in seeds if not self._done(t.id)]
        accepted_seeds = sorted(
            (sample_id for sample_id, entry in self.samples.entries() if entry.kind == SEED), key=self.sort_key
        )
        for sample_id in accepted_seeds:
            entry = self.samples.entry(sample_id)
            pending += [
                t for t in self._plan_derivations(sample_id, entry.turns, entry.persona) if not self._done(t.id)
            ]
        for task in self.plan_extra():
            self.order.setdefault(task.id, (4, *task.order))
            if not self._done(task.id):
                pending.append(task)
        self.seeds_requested = len(seeds)
        return pending

    def _open_journals(self) -> None:
        self.seeds_journal = Journal(self.output_dir / SEEDS_FILE, fsync=self.options.execution.fsync)
        self.derivations_journal = Journal(self.output_dir / DERIVATIONS_FILE, fsync=self.options.execution.fsync)
        self.rejects_journal = Journal(self.output_dir / REJECTS_FILE, fsync=self.options.execution.fsync)
        # Opened once the three files exist, before anything can replace them (see RecordReader).
        self.samples.reader = RecordReader([self.output_dir / name for name in JOURNALS])

    def _start_progress(self, pending: list[Task]) -> None:
        done_before = len(self.samples) + sum(
            1 for i, r in self.rejects.items() if r[0] != PROVIDER_ERROR and "~u" not in i
        )
        # The total is known from the plan up front (so the ETA is too): each pending seed reserves
        # the most derivations it can lead to; the reserve is settled once the seed is decided.
        self._reserve = self._derivations_per_seed()
        reserved = self._reserve * sum(1 for t in pending if t.kind == SEED)
        self.progress.start(done_before + len(pending) + reserved, done=done_before)

    async def _end(self, workers: list[asyncio.Task[None]], started: float, interrupted: bool) -> RunResult:
        """Stop the workers, close the journals and finish the round (whatever stopped it)."""
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self.executor is not None:
            self.executor.close()
        if self.worker is not None:
            await self.worker.validator.aclose()
        self.progress.close()
        for journal in (self.seeds_journal, self.derivations_journal, self.rejects_journal):
            journal.close()
        cache = getattr(self.dispatcher, "cache", None)
        if not interrupted and self.stop_error is None and self.crash is None:
            self.stop_error = nothing_accepted_error(self)
        try:
            return self._finish(started, interrupted)
        finally:
            if self.samples.reader is not None:
                self.samples.reader.close()
            if cache is not None:
                cache.close()
            if self.judge is not None:
                await self.judge.aclose()

    def sort_key(self, sample_id: str) -> tuple[Any, ...]:
        return (*self.order.get(sample_id, (3,)), sample_id)

    def round_end(self, started: float, interrupted: bool) -> RoundEnd:
        """What this round did, for :func:`fountain.run.finish.finish_round`."""
        servers = getattr(self.provider, "servers", None)  # a fleet: what each server did
        return RoundEnd(
            output_dir=self.output_dir,
            samples=self.samples,
            rejects=self.rejects,
            sort_key=self.sort_key,
            dataset_format=dataset_format(self.spec, self.options),
            mode=self.mode,
            seeds_requested=self.seeds_requested,
            derivations_planned=self.planned_derivations,
            target=self.gen.target,
            manifest=self.manifest,
            stats=self.stats,
            retries=self.retries,
            warnings=list(self.warnings),
            servers=servers() if callable(servers) else None,
            started=started,
            interrupted=interrupted,
            crash=self.crash,
            stop_error=self.stop_error,
            judge=self.judge,
        )

    def _finish(self, started: float, interrupted: bool) -> RunResult:
        """Hand the round's end to :func:`fountain.run.finish.finish_round` (journals rewritten in
        plan order, the manifest written)."""
        return finish_round(self.round_end(started, interrupted))


def _is_fatal(error: ProviderError) -> bool:
    from fountain.providers.dispatch import FATAL_ERRORS

    return isinstance(error, FATAL_ERRORS)
