"""``fountain run --batch``: the run's requests go through a provider's batch API (half price,
its own rate-limit pool) instead of one HTTP call each.

How it works (:mod:`.phase`): the generation :class:`~fountain.generation.worker.Worker` runs every
task against a :class:`~.recorder.RecordingModel`, which answers from the response cache and
records each request it cannot answer; the recorded requests are submitted as batch jobs
(:mod:`.openai`, :mod:`.anthropic`, :mod:`.gemini`), and their results, matched by the request's
cache key (the ``custom_id`` / ``key`` of each batch line), go into the response cache. Rounds
repeat (seeds first, then their derivations and any re-asks) until every request a task makes is
answered; the normal run then writes the dataset from the cache, making no direct call.

Crash safety (:mod:`.jobs`): ``batches.jsonl`` in the output folder records the intent to submit
(the job's request keys and file hash) before a job is created and its id after, each line
fsynced; a rerun never submits a request that is already in a job.
"""

from fountain.batch.jobs import EXIT_SUBMITTED, BatchLimits

__all__ = ["EXIT_SUBMITTED", "BatchLimits"]
