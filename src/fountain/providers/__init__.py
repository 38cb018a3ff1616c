"""Model providers behind one async protocol (see :mod:`fountain.providers.base`).

The registry: :func:`resolve_provider_config` merges the CLI flags, the environment and the
spec's ``model`` block into a :class:`ProviderConfig`; :func:`create_provider` builds the provider
it names. Adapter modules (and their SDKs) are imported only when that provider is created.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from fountain.errors import FountainError, ProviderError
from fountain.providers.base import (
    Completion,
    Message,
    Provider,
    ProviderConfig,
    Request,
    Sampling,
)

if TYPE_CHECKING:
    from fountain.spec.model import ModelSettings

__all__ = [
    "PROVIDERS",
    "DEFAULT_MODELS",
    "DEFAULT_PROVIDER",
    "Completion",
    "Message",
    "Provider",
    "ProviderConfig",
    "Request",
    "Sampling",
    "create_provider",
    "resolve_provider_config",
    "check_provider_name",
]

# name -> "module:Class"
PROVIDERS: dict[str, str] = {
    "local": "fountain.providers.local:LocalProvider",
    "openai": "fountain.providers.openai:OpenAIProvider",
    "anthropic": "fountain.providers.anthropic:AnthropicProvider",
    "gemini": "fountain.providers.gemini:GeminiProvider",
    "fake": "fountain.providers.fake:FakeProvider",
    "vllm": "fountain.providers.vllm:VLLMProvider",
}

DEFAULT_PROVIDER = "local"
# None: the provider chooses (local: the bundled SmolLM2-135M-Instruct; fake: no model at all).
DEFAULT_MODELS: dict[str, str | None] = {
    "local": None,
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash",
    "fake": None,
    "vllm": None,  # a Hugging Face model name must be given (--model)
}

# The variables each provider reads its own key from: a spec may name these without consent.
OWN_KEY_ENVS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
ENV_PROVIDER = "FOUNTAIN_PROVIDER"
ENV_MODEL = "FOUNTAIN_MODEL"
ENV_BASE_URL = "FOUNTAIN_BASE_URL"


def check_provider_name(name: str, *, location: str | None = None) -> str:
    """The canonical (lower-case) provider name, or a FountainError with a suggestion."""
    canonical = name.strip().lower()
    if canonical in PROVIDERS:
        return canonical
    close = difflib.get_close_matches(canonical, list(PROVIDERS), n=1, cutoff=0.5)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise FountainError(
        f"unknown provider {name!r}", location=location, hint=f"{suggestion}known providers: {', '.join(PROVIDERS)}"
    )


def create_provider(config: ProviderConfig) -> Provider:
    """Build the provider ``config.provider`` names (imports its module, and SDK, only now)."""
    name = check_provider_name(config.provider)
    if name == "openai" and len(config.base_urls) > 1:
        from fountain.providers.fleet import FleetProvider

        return FleetProvider(config)
    module_name, _, class_name = PROVIDERS[name].partition(":")
    module = importlib.import_module(module_name)
    provider: Provider = getattr(module, class_name)(config)
    return provider


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def resolve_provider_config(
    spec_model: ModelSettings | None,
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    allow_key_envs: Collection[str] = (),
    base_urls: tuple[str, ...] | None = None,
    timeout_s: float | None = None,
    structured_output: str | None = None,
) -> ProviderConfig:
    """Merge the provider settings: CLI flags > environment > spec ``model`` block > default.

    Environment: ``FOUNTAIN_PROVIDER``, ``FOUNTAIN_MODEL``, ``FOUNTAIN_BASE_URL``. A layer's model
    and base URL apply only when that layer names no provider or names the provider finally chosen,
    so ``--provider openai`` does not inherit the spec's Gemini model name. Without any model the
    provider's default (``DEFAULT_MODELS``) is used.

    A spec that names both its own ``base_url`` and an ``api_key_env`` other than the provider's
    own key variable would send that variable's value (a GitHub token, say) to a server the spec
    chose: that needs the user's consent, ``allow_key_envs`` (the CLI's ``--allow-key-env NAME``),
    unless the user gave the URL (``--base-url``, ``FOUNTAIN_BASE_URL``).

    ``base_urls`` (several ``--base-url``, else the spec's ``model.base_urls``) names a fleet of
    OpenAI-compatible servers; ``timeout_s`` (``--timeout``) and ``structured_output``
    (``--structured-output``) override the spec's ``model`` block.
    """
    env = os.environ if env is None else env
    spec_provider = _clean(getattr(spec_model, "provider", None))
    # (provider, model, base_url, where the provider came from) per layer, strongest first
    layers = [
        (_clean(provider), _clean(model), _clean(base_url), "--provider"),
        (_clean(env.get(ENV_PROVIDER)), _clean(env.get(ENV_MODEL)), _clean(env.get(ENV_BASE_URL)), ENV_PROVIDER),
        (
            spec_provider,
            _clean(getattr(spec_model, "name", None)),
            _clean(getattr(spec_model, "base_url", None)),
            "setup.yaml: model.provider",
        ),
    ]
    chosen = DEFAULT_PROVIDER
    for layer_provider, _, _, where in layers:
        if layer_provider is not None:
            chosen = check_provider_name(layer_provider, location=where)
            break
    layers = [(p if p is None else p.lower(), m, u, w) for p, m, u, w in layers]

    def first(index: int) -> str | None:
        for layer in layers:
            if layer[0] in (None, chosen) and layer[index] is not None:
                return layer[index]
        return None

    spec_applies = spec_model is not None and (spec_provider is None or spec_provider.lower() == chosen)
    sampling = Sampling()
    timeout = 120.0
    api_key_env = None
    if spec_applies:
        assert spec_model is not None  # spec_applies implies it
        sampling = Sampling(
            temperature=spec_model.temperature, top_p=spec_model.top_p, max_tokens=spec_model.max_tokens
        )
        if spec_model.timeout_s is not None:
            timeout = float(spec_model.timeout_s)
        api_key_env = _clean(spec_model.api_key_env)
    if timeout_s is not None:
        timeout = float(timeout_s)
    fleet: tuple[str, ...] = ()
    spec_fleet: tuple[str, ...] = tuple(getattr(spec_model, "base_urls", None) or ()) if spec_applies else ()
    if base_urls and len(base_urls) > 1:
        fleet = tuple(base_urls)
    elif not base_url and not _clean(env.get(ENV_BASE_URL)) and spec_fleet:
        fleet = spec_fleet
    url = fleet[0] if fleet else first(2)
    spec_url = _clean(getattr(spec_model, "base_url", None)) if spec_applies else None
    spec_url = spec_url or (spec_fleet[0] if spec_fleet and fleet == spec_fleet else None)
    user_url = bool(base_urls) or any(layer[2] is not None and layer[0] in (None, chosen) for layer in layers[:2])
    if (
        api_key_env is not None
        and spec_url is not None
        and not user_url
        and api_key_env not in OWN_KEY_ENVS.get(chosen, ())
        and api_key_env not in allow_key_envs
    ):
        raise ProviderError(
            f"setup.yaml asks to send the value of {api_key_env} (model.api_key_env) to its own server "
            f"{spec_url} (model.base_url); a spec from someone else could use this to collect a token",
            location="setup.yaml: model.api_key_env",
            hint=f"if you trust this spec and that server, allow it with --allow-key-env {api_key_env}, "
            "or pass the server's URL yourself with --base-url",
        )
    extra: dict[str, object] = {}
    forced = structured_output or (getattr(spec_model, "structured_output", None) if spec_applies else None)
    if forced:
        extra["structured_output"] = forced
    return ProviderConfig(
        provider=chosen,
        model=first(1) or DEFAULT_MODELS[chosen],
        base_url=url,
        base_urls=fleet if len(fleet) > 1 else (),
        api_key_env=api_key_env,
        timeout_s=timeout,
        sampling=sampling,
        extra=extra,
    )
