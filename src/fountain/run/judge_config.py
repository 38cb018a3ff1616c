"""The judge's provider config (from its settings and the run's provider) and what
``fountain run --dry-run`` says of the judge (:mod:`fountain.run.judging` runs it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fountain.raters.judge_rubric import JudgeSettings


def judge_config(
    settings: JudgeSettings, run_name: str, run_model: str | None, run_url: str | None, allow_key_env: Any = ()
) -> Any:
    """The judge's provider config: its block (and ``--judge``); the run's provider, model and
    endpoint when it names none (the model and endpoint only for the same provider)."""
    from fountain.providers import resolve_provider_config
    from fountain.spec.model import ModelSettings

    name = settings.provider or run_name
    same = name == run_name
    model = settings.model or (run_model if same else None)
    inherited = run_url if same and settings.base_url is None else None
    block = ModelSettings(
        provider=name,
        name=model,
        base_url=settings.base_url,
        api_key_env=settings.api_key_env,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        timeout_s=settings.timeout_s,
        structured_output=settings.structured_output,
    )
    return resolve_provider_config(block, base_url=inherited, env={}, allow_key_envs=allow_key_env)


def dry_run_lines(spec: Any, options: Any, run_config: Any, estimate: Any, prices: Any) -> list[str]:
    """What ``fountain run --dry-run`` says of the judge (nothing without one): its requests (one
    per conversation generated, each malformed verdict asked again at most ``max_retries``
    times) and their cost. A verdict's prompt holds the scene and the conversation."""
    from fountain.raters.judge_rubric import judge_settings
    from fountain.types import Usage

    settings = judge_settings(spec, options.rating.judge)
    if settings is None:
        return []
    config = judge_config(
        settings, run_config.provider, run_config.model, run_config.base_url, options.llm.allow_key_env
    )
    conversations = estimate.seed_conversations + estimate.derivation_conversations_max
    low = estimate.seed_conversations + estimate.derivation_conversations_min
    high = conversations * (1 + max(0, settings.max_retries))
    prompt = estimate.prompt_tokens_per_call + estimate.completion_tokens_high + 400  # + rubric and instructions
    verdicts = f"{conversations:,}" if low == conversations else f"{low:,}–{conversations:,}"
    lines = [
        f"judge {config.provider}:{config.model}: {verdicts} verdicts (at most {high:,} requests with every "
        f"retry), about {prompt:,} tokens in each"
    ]
    price = prices.lookup(config.provider, config.model)
    if price is None:
        lines.append(f"judge cost: unknown (no price for {config.provider} model {config.model})")
    else:
        cost_low = price.cost(Usage(prompt * low, 60 * low))
        cost_high = price.cost(Usage(prompt * high, int(settings.max_tokens or 512) * high))
        lines.append(f"judge estimated cost: ${cost_low:,.4f} – ${cost_high:,.4f} (not in the estimate above)")
    return lines


def reexport_note(spec: Any, options: Any, run_provider: Any, section: Any) -> str | None:
    """What a run that judged nothing says when the judge asked now (``--judge`` or the spec's
    ``judge:`` block) is not the one that scored the folder's records (``section``: the manifest's
    ``judge``). Frameworks with rounds (Filter, Feedback) skip rounds already complete, so a rerun
    of a finished run re-exports without judging; None when the judges agree (or neither exists)."""
    before = section if isinstance(section, dict) and section.get("provider") else None
    data = getattr(spec, "data", None)
    if before is None and options.rating.judge is None and not (isinstance(data, dict) and data.get("judge")):
        return None  # no judge then or now: nothing of the judge is imported
    from pathlib import PurePath

    from fountain.raters.judge_rubric import judge_settings

    settings = judge_settings(spec, options.rating.judge)
    now: tuple[str, str | None, str] | None = None
    if settings is not None:
        config = judge_config(
            settings,
            run_provider.name,
            getattr(run_provider, "model", None),
            getattr(run_provider, "base_url", None),
            options.llm.allow_key_env,
        )
        now = (config.provider, config.model, settings.rubric_fingerprint())
    if before is None and now is None:
        return None
    if before is not None and now is not None:
        same_model = now[1] is None or PurePath(str(now[1])).name == PurePath(str(before.get("model"))).name
        if before.get("provider") == now[0] and same_model and before.get("rubric") == now[2]:
            return None
    was = (
        "no judge"
        if before is None
        else f"judged by {before.get('provider')}:{before.get('model')} (rubric {before.get('rubric')})"
    )
    asked = "no judge" if now is None else f"{now[0]}:{now[1] or '(default model)'} (rubric {now[2]})"
    return (
        f"judge not applied: every round of this run is complete, so its records were re-exported as they "
        f"were ({was}); this run asked for {asked}. To judge them again, run into a new folder with --output"
    )
