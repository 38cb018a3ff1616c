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

Modules: ``plan`` (the checks made before a token is spent, the privacy plan); ``base`` (the
:class:`Framework` protocol: one class, one ``run()``) with one module per framework: ``gen`` (Gen,
GenLLM), ``filter`` (Filter), ``feedback`` (Feedback); what a framework is handed: ``context``
(:class:`RunContext`: plan, options, output folder, state, engine rounds), ``rating`` (dedup, Real
Filter, DP noise), ``embeddings`` (synthetic cached, private in memory), ``privacy_account`` (the
ledger); ``rounds`` (the engine of one round, GenLLM prompts); ``records`` (``framework.json``,
framework rejects, enrichment.json); ``runner`` (the orchestrator: setup, the framework, and the
end it alone decides: rejects, export, manifest).
"""

from __future__ import annotations

from fountain.frameworks.base import Framework
from fountain.frameworks.context import RunContext
from fountain.frameworks.plan import (
    FRAMEWORKS,
    RATERS,
    FrameworkPlan,
    PrivacyPlan,
    plan_framework,
)
from fountain.frameworks.records import (
    STATE_FILE,
    dedup_view,
    load_state,
    reject_record,
)
from fountain.frameworks.rounds import genllm_spec
from fountain.frameworks.runner import FRAMEWORK_CLASSES, run_framework, run_framework_async
from fountain.spec.overrides import apply_overrides

__all__ = [
    "FRAMEWORKS",
    "FRAMEWORK_CLASSES",
    "Framework",
    "RunContext",
    "apply_overrides",
    "RATERS",
    "FrameworkPlan",
    "PrivacyPlan",
    "STATE_FILE",
    "dedup_view",
    "genllm_spec",
    "load_state",
    "plan_framework",
    "reject_record",
    "run_framework",
    "run_framework_async",
]
