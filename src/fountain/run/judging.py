"""The judge in a run: its provider and request path, the verdict on each accepted conversation,
resume compatibility, and its summary in ``manifest.json``.

Only imported when a run has a judge (``--judge`` or the spec's ``judge:`` block) or resumes a
folder that had one: a run without a judge pays nothing for it.

- Requests go through a :class:`~fountain.providers.dispatch.Dispatcher` of their own provider,
  sharing the run's response cache, price table and ``--budget`` (each dispatcher counts the
  other's spend), so a resumed run never pays twice for a verdict and the budget covers both.
- An accepted conversation gets ``metadata.judge`` (scores, overall, reason); one below the
  threshold becomes the reject ``judge:<criterion>`` with the judge's reason as detail.
- The judge's identity (provider, model, endpoint) and the rubric's fingerprint are recorded in
  the manifest; resuming with another judge or rubric is refused (``--resume always``: allowed,
  with a note; each record names the judge and rubric that scored it).
- ``manifest.json``'s ``judge`` section: requests, cache hits, usage and cost (also added to the
  run's total ``cost_usd``/``usage``), conversations judged, rejects per criterion, mean per criterion.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import OutputError

if TYPE_CHECKING:  # pragma: no cover
    from fountain.generation.worker import Outcome
    from fountain.providers.base import Provider
    from fountain.providers.dispatch import Dispatcher
    from fountain.raters.judge import Judge
    from fountain.raters.judge_rubric import JudgeSettings
    from fountain.run.manifest import Manifest
    from fountain.types import Sample

RAW_MAX_CHARS = 4000


def wanted(engine: Any, manifest: Manifest | None) -> bool:
    """Whether this run needs the judge module at all (cheap: no import of the judge path)."""
    data = getattr(engine.spec, "data", None)
    return (
        engine.options.rating.judge is not None
        or (isinstance(data, dict) and data.get("judge") is not None)
        or (manifest is not None and bool(manifest.extra.get("judge")))
    )


def create_judge_provider(config: Any) -> Provider:
    """The judge's provider from its config (a seam for tests, which swap in a scripted one)."""
    from fountain.providers import create_provider

    return create_provider(config)


def _judge_key(section: Any) -> tuple[Any, ...] | None:
    if not isinstance(section, dict) or not section.get("provider"):
        return None
    return (section.get("provider"), section.get("model"), section.get("base_url"), section.get("rubric"))


class RunJudge:
    """The judge of one engine session (see the module docstring)."""

    def __init__(self, engine: Any, settings: JudgeSettings, provider: Provider, own: bool, dispatcher: Dispatcher):
        from fountain.providers.cache import public_identity
        from fountain.raters.judge import Judge

        self.engine = engine
        self.settings = settings
        self.provider = provider
        self.own_provider = own
        self.dispatcher = dispatcher
        self.judge: Judge = Judge(engine.spec, settings, dispatcher.complete, seed=engine.options.generation.seed)
        ident = public_identity(provider.identity())
        self.identity = {
            "provider": ident.get("provider") or provider.name,
            "model": ident.get("model") or getattr(provider, "model", ""),
            "base_url": ident.get("base_url"),
            "rubric": settings.rubric_fingerprint(),
        }
        self.label = f"{self.identity['provider']}:{self.identity['model']}"

    # --- a conversation ---------------------------------------------------------------------------

    async def review(self, outcome: Outcome, parent: Sample | None) -> Outcome:
        """``outcome`` with its sample judged: scores in its metadata, or a ``judge:`` reject."""
        sample = outcome.sample
        if sample is None:
            return outcome
        verdict = await self.judge.judge(sample, parent)
        meta = verdict.metadata(self.settings, self.label)
        failed = verdict.failed(self.settings)
        judged = replace(sample, provenance=replace(sample.provenance, judge=meta))
        if failed is None:
            return replace(outcome, sample=judged)
        record = judged.to_record()
        reject = {
            "id": sample.id,
            "kind": outcome.task.kind,
            "direction": outcome.task.direction,
            "reason": f"judge:{failed}",
            "detail": verdict.reason if not verdict.malformed else verdict.malformed,
            "raw": json.dumps(record["messages"], ensure_ascii=False)[:RAW_MAX_CHARS],
            "attempts": verdict.attempts,
            "metadata": record["metadata"],
        }
        return replace(outcome, sample=None, reject=reject)

    # --- the manifest -----------------------------------------------------------------------------

    def finish(self, manifest: Manifest) -> None:
        """Write the manifest's ``judge`` section and add this session's judging to its total
        cost/usage (called after ``manifest.end``, which wrote the generation's cumulative figures).

        Verdict counts and means are read from the journals (exact after kills and resumes);
        requests, usage and cost accumulate over sessions (a session killed with SIGKILL leaves
        none, like the generation's own figures)."""
        stats = self.dispatcher.stats
        before = manifest.extra.get("judge")
        before = before if isinstance(before, dict) and _judge_key(before) == _judge_key(self.identity) else {}
        tally = _tally(self.engine.output_dir, self.label, self.settings.rubric_fingerprint())
        usage = _numbers(before.get("usage"))
        session = stats.usage.to_dict()
        names = [*self.settings.criteria, "overall"]
        manifest.extra["judge"] = {
            **self.identity,
            "threshold": self.settings.threshold,
            "scale": [1, 5],
            "rubric_criteria": [{"name": c.name, "description": c.description} for c in self.settings.rubric],
            "judged": tally.judged,
            "rejected": dict(sorted(tally.rejected.items())),
            "mean": {k: round(tally.sums[k] / tally.counts[k], 3) for k in names if tally.counts[k]},
            "requests": int(before.get("requests") or 0) + stats.requests,
            "cache_hits": int(before.get("cache_hits") or 0) + stats.cache_hits,
            "failed": int(before.get("failed") or 0) + stats.failed,
            "usage": {k: int(usage.get(k, 0)) + int(v) for k, v in session.items()},
            "cost_usd": round(float(before.get("cost_usd") or 0.0) + stats.cost_usd, 6),
        }
        # The run's total: the generation's cumulative figures plus this session's judging
        # (earlier sessions' judging is already in the total the generation resumed from).
        manifest.cost_usd = float(manifest.cost_usd) + stats.cost_usd
        manifest.usage = {k: int(manifest.usage.get(k, 0)) + int(v) for k, v in session.items()}
        if stats.unpriced:
            manifest.cost_complete = False

    async def aclose(self) -> None:
        if self.own_provider:
            await self.provider.aclose()


class _Tally:
    """Verdicts found in the journals."""

    def __init__(self) -> None:
        self.judged = 0
        self.rejected: Counter[str] = Counter()
        self.sums: defaultdict[str, float] = defaultdict(float)
        self.counts: Counter[str] = Counter()

    def add(self, verdict: dict[str, Any], reason: str | None) -> None:
        self.judged += 1
        if reason:
            self.rejected[reason] += 1
        scores = _numbers(verdict.get("scores"))
        for name, score in scores.items():
            self.sums[name] += score
            self.counts[name] += 1
        overall = verdict.get("overall")
        if scores and isinstance(overall, (int, float)):
            self.sums["overall"] += float(overall)
            self.counts["overall"] += 1


def _tally(folder: Path, label: str, rubric: str) -> _Tally:
    """The verdicts of this judge and rubric in the journals (streamed, one line at a time)."""
    from fountain import fastjson
    from fountain.run.outputs import JOURNALS, REJECTS_FILE

    tally = _Tally()
    for name in JOURNALS:
        path = folder / name
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = fastjson.loads(line)
                except ValueError:
                    continue  # a torn line (the rewrite drops it)
                meta = record.get("metadata") if isinstance(record, dict) else None
                verdict = meta.get("judge") if isinstance(meta, dict) else None
                if not isinstance(verdict, dict) or verdict.get("judge") != label or verdict.get("rubric") != rubric:
                    continue
                reason = str(record.get("reason") or "") if name == REJECTS_FILE else ""
                tally.add(verdict, reason[len("judge:") :] if reason.startswith("judge:") else None)
    return tally


def _numbers(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


async def attach(engine: Any, decision: Any, manifest: Manifest) -> RunJudge | None:
    """The run's judge when it has one (or resumes a judged folder), else None; nothing of the
    judge is imported otherwise. The judge's identity goes into ``manifest`` at once (the engine
    writes it before any request), so a run killed before its end resumes with the same judge."""
    if not wanted(engine, decision.manifest):
        return None
    judge = await attach_judge(engine, decision)
    if judge is not None:
        before = manifest.extra.get("judge")
        kept = before if isinstance(before, dict) and _judge_key(before) == _judge_key(judge.identity) else {}
        manifest.extra["judge"] = {**kept, **judge.identity}
    return judge


async def attach_judge(engine: Any, decision: Any) -> RunJudge | None:
    """The run's judge (None without one), after checking a resumed folder was judged the same
    way. Called once the run's dispatcher exists (its cache and prices are shared)."""
    from fountain.raters.judge_rubric import judge_settings

    settings = judge_settings(engine.spec, engine.options.rating.judge)
    previous = decision.manifest.extra.get("judge") if decision.resuming and decision.manifest else None
    if settings is None:
        _check_same(engine, decision, _judge_key(previous), None, "no judge")
        return None
    config = _judge_config(engine, settings)
    # The run's own provider object judges only for the local model (loaded once) and the fake
    # (a test's scripted double); an API judge gets a client of its own (with --batch the run's
    # provider only replays the batch results).
    reuse = (
        config.provider in ("local", "fake")
        and config.provider == engine.provider.name
        and config.model == getattr(engine.provider, "model", None)
        and config.base_url == getattr(engine.provider, "base_url", None)
        and not config.extra
    )
    provider = engine.provider if reuse else create_judge_provider(config)
    try:
        dispatcher = _judge_dispatcher(engine, provider)
        judge = RunJudge(engine, settings, provider, not reuse, dispatcher)
        _check_same(engine, decision, _judge_key(previous), _judge_key(judge.identity), judge.label)
    except BaseException:
        if not reuse:
            await provider.aclose()
        raise
    return judge


def _judge_config(engine: Any, settings: JudgeSettings) -> Any:
    from fountain.run.judge_config import judge_config

    run_provider = engine.provider
    return judge_config(
        settings,
        run_provider.name,
        getattr(run_provider, "model", None),
        getattr(run_provider, "base_url", None),
        engine.options.llm.allow_key_env,
    )


def _judge_dispatcher(engine: Any, provider: Provider) -> Dispatcher:
    from fountain.providers.dispatch import Dispatcher, RunStats

    options = engine.options
    run = engine.dispatcher
    # A judge on the run's own endpoint shares its limiter: one concurrency, one rpm/tpm for the server.
    same_endpoint = provider.name == engine.provider.name and getattr(provider, "base_url", None) == getattr(
        engine.provider, "base_url", None
    )
    dispatcher = Dispatcher(
        provider,
        cache=run.cache,
        limiter=run.limiter if same_endpoint else None,
        concurrency=engine.concurrency(),
        budget_usd=options.budget.budget_usd,
        prices=run.prices,
        stats=RunStats(),
        max_error_rate=options.budget.max_error_rate,
    )
    # One budget for both: each dispatcher counts what the other spent and has in flight.
    dispatcher.budget_peers = (run,)
    run.budget_peers = (*getattr(run, "budget_peers", ()), dispatcher)
    return dispatcher


def _check_same(engine: Any, decision: Any, before: Any, now: Any, label: str) -> None:
    """Refuse to resume a folder judged by another judge or rubric (``--resume always``: a note)."""
    if not decision.resuming or before == now:
        return
    if before is None and not engine.samples and not engine.rejects:
        return  # nothing was accepted unjudged yet
    was = "no judge" if before is None else f"judge {before[0]}:{before[1]} (rubric {before[3]})"
    then = label if now is None else f"judge {now[0]}:{now[1]} (rubric {now[3]})"
    if engine.options.export.resume == "always":
        engine.warnings.append(f"judge changed: {was} -> {then}; records keep the verdict they were given")
        return
    raise OutputError(
        f"this output was judged with {was}, and this run would use {then}",
        location=str(engine.output_dir / "manifest.json"),
        hint="old verdicts are not reused for another judge or rubric: write to a new folder with "
        "--output, restore the judge settings, or add --resume always to keep the old verdicts "
        "and judge only what is new",
    )
