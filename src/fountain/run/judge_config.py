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
