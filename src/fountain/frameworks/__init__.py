"""Frameworks: how rounds of generate -> rate -> select are composed (names of the original platform).

- ``Gen``: seeds and derivations (:mod:`fountain.run.engine`), then dedup (:mod:`fountain.raters.dedup`).
- ``GenLLM``: the model first enriches the scene (:mod:`fountain.generation.enrich`: a scenario paragraph and
  personas for the user role), then Gen with the scenario and the personas in every prompt.
- ``Filter``: rounds of generate -> dedup -> rate (RF, PE, or dedup only) that accumulate the kept
  conversations until ``--target`` of them or ``--iterations`` rounds.
- ``Feedback``: Private Evolution. Iteration 0 is a Gen population; each iteration t = 1..T
  embeds the population, lets the private conversations vote for their nearest synthetic ones
  (the DP histogram of :mod:`fountain.raters.pe`), selects by rank or by sampling, and asks the
  model for variations (derivations) of the selected SYNTHETIC conversations, which form the next
  population. Every iteration is charged to a :class:`~fountain.raters.privacy.PrivacyLedger`
  written to the manifest (``privacy.ledger``). The dataset is the last population, deduplicated.

Every round runs the engine into the same output folder, so the cache, the journals, resume and
the ``--budget`` cover the whole run. ``framework.json`` in the output folder records what only the
framework knows (accepted ids per round, the DP selections, the privacy spent), so a resumed run
never draws the DP noise of an iteration twice. Rejects of the framework (``duplicate:<method>``,
``rf:<reason>``, ``pe:no_votes``) are added to ``rejects.jsonl`` after the engine's own.

Privacy hygiene: the private conversations are read into memory, embedded in memory (no cache),
and only the noisy histogram leaves the rater; prompts only ever hold synthetic conversations; no
message quotes private text.

Modules: ``plan`` (the checks made before a token is spent, the privacy plan), ``records`` (what
the framework writes beside the engine: ``framework.json``, its rejects, combined stats),
``rounds`` (the engine of one round, GenLLM prompts), ``runner`` (one framework run, its setup and
end, and the entry points), with the runner's parts ``rating`` (dedup, embeddings, the raters,
privacy accounting), ``filter_rounds`` (Filter) and ``feedback`` (Feedback, Private Evolution).
"""

from __future__ import annotations

from fountain.frameworks.plan import (
    FRAMEWORKS,
    RATERS,
    FrameworkPlan,
    PrivacyPlan,
    apply_overrides,
    plan_framework,
)
from fountain.frameworks.records import (
    STATE_FILE,
    dedup_view,
    load_state,
    reject_record,
)
from fountain.frameworks.rounds import genllm_spec
from fountain.frameworks.runner import run_framework, run_framework_async

__all__ = [
    "FRAMEWORKS",
    "RATERS",
    "FrameworkPlan",
    "PrivacyPlan",
    "STATE_FILE",
    "apply_overrides",
    "dedup_view",
    "genllm_spec",
    "load_state",
    "plan_framework",
    "reject_record",
    "run_framework",
    "run_framework_async",
]
