"""Provider registry, configuration precedence and the helpers the remote adapters share."""

from __future__ import annotations

import email.utils
import subprocess
import sys

import pytest

from fountain.errors import FountainError
from fountain.providers import (
    DEFAULT_MODELS,
    PROVIDERS,
    check_provider_name,
    create_provider,
    resolve_provider_config,
)
from fountain.providers.base import ProviderConfig, Request, Sampling
from fountain.providers.http import (
    combined_seed,
    merged_sampling,
    parse_duration,
    parse_retry_after,
    retry_after_from_headers,
)


def _spec_model(**fields):
    from fountain.spec.load import ModelSettings

    return ModelSettings(**fields)


# --- registry --------------------------------------------------------------------------------------


def test_every_documented_name_is_registered():
    assert set(PROVIDERS) == {"local", "openai", "anthropic", "gemini", "fake", "vllm"}
    assert PROVIDERS["local"] == "fountain.providers.local:LocalProvider"
    assert PROVIDERS["fake"] == "fountain.providers.fake:FakeProvider"


def test_unknown_provider_suggests_the_closest_name():
    with pytest.raises(FountainError) as info:
        create_provider(ProviderConfig(provider="opnai"))
    assert "unknown provider 'opnai'" in info.value.message
    assert "did you mean 'openai'?" in info.value.hint
    assert "local, openai, anthropic, gemini, fake" in info.value.hint


def test_unknown_provider_without_a_close_match_lists_the_names():
    with pytest.raises(FountainError) as info:
        check_provider_name("zzzz")
    assert "did you mean" not in info.value.hint and "gemini" in info.value.hint


def test_create_builds_the_named_adapter(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    provider = create_provider(ProviderConfig(provider="OpenAI", model="gpt-x"))
    assert type(provider).__name__ == "OpenAIProvider" and provider.model == "gpt-x"
    assert provider.name == "openai"


def test_create_loads_modules_by_path(monkeypatch):
    import types

    module = types.ModuleType("fountain_test_dummy_provider")

    class Dummy:
        def __init__(self, config):
            self.config = config

    module.Dummy = Dummy
    monkeypatch.setitem(sys.modules, "fountain_test_dummy_provider", module)
    monkeypatch.setitem(PROVIDERS, "fake", "fountain_test_dummy_provider:Dummy")
    config = ProviderConfig(provider="fake")
    assert create_provider(config).config is config


def test_importing_the_registry_loads_no_adapter_or_sdk():
    code = (
        "import sys, fountain.providers; "
        "bad = [m for m in ('aiohttp', 'anthropic', 'google.genai', 'openai', 'llama_cpp', "
        "'fountain.providers.openai', 'fountain.providers.gemini') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- precedence: CLI > environment > spec > default -----------------------------------------------


def test_default_is_local_with_its_own_model():
    config = resolve_provider_config(None, env={})
    assert config.provider == "local" and config.model is None and config.base_url is None


def test_spec_block_is_used_when_nothing_overrides_it():
    spec = _spec_model(
        provider="gemini",
        name="gemini-2.0-flash",
        temperature=0.7,
        max_tokens=900,
        timeout_s=30,
        api_key_env="MY_GEMINI_KEY",
    )
    config = resolve_provider_config(spec, env={})
    assert (config.provider, config.model) == ("gemini", "gemini-2.0-flash")
    assert config.sampling == Sampling(temperature=0.7, max_tokens=900)
    assert config.timeout_s == 30.0 and config.api_key_env == "MY_GEMINI_KEY"


def test_environment_overrides_spec_and_cli_overrides_environment():
    spec = _spec_model(provider="openai", name="gpt-4o", base_url="http://spec:1/v1")
    env = {"FOUNTAIN_PROVIDER": "openai", "FOUNTAIN_MODEL": "env-model", "FOUNTAIN_BASE_URL": "http://env:2/v1"}
    config = resolve_provider_config(spec, env=env)
    assert (config.model, config.base_url) == ("env-model", "http://env:2/v1")
    config = resolve_provider_config(spec, model="cli-model", env=env)
    assert (config.model, config.base_url) == ("cli-model", "http://env:2/v1")
    config = resolve_provider_config(spec, base_url="http://cli:3/v1", env={})
    assert (config.model, config.base_url) == ("gpt-4o", "http://cli:3/v1")


def test_other_providers_settings_are_not_inherited():
    spec = _spec_model(provider="gemini", name="gemini-2.0-flash", temperature=0.1, api_key_env="K")
    config = resolve_provider_config(spec, provider="anthropic", env={"FOUNTAIN_MODEL": "x"})
    # FOUNTAIN_MODEL names no provider, so it applies; the spec's Gemini settings do not
    assert (config.provider, config.model) == ("anthropic", "x")
    assert config.sampling == Sampling() and config.api_key_env is None
    config = resolve_provider_config(spec, provider="openai", env={})
    assert config.model == DEFAULT_MODELS["openai"] == "gpt-4o-mini"


def test_cli_model_alone_keeps_the_spec_provider():
    config = resolve_provider_config(_spec_model(provider="anthropic"), model="claude-x", env={})
    assert (config.provider, config.model) == ("anthropic", "claude-x")


def test_default_models():
    for name, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")):
        assert resolve_provider_config(None, provider=name, env={}).model == model


@pytest.mark.parametrize(
    "where, kwargs, env",
    [
        ("--provider", {"provider": "gemni"}, {}),
        ("FOUNTAIN_PROVIDER", {}, {"FOUNTAIN_PROVIDER": "gemni"}),
    ],
)
def test_unknown_provider_says_where_it_came_from(where, kwargs, env):
    with pytest.raises(FountainError) as info:
        resolve_provider_config(None, env=env, **kwargs)
    assert info.value.location == where and "did you mean 'gemini'?" in info.value.hint


def test_unknown_spec_provider_points_at_setup_yaml():
    with pytest.raises(FountainError) as info:
        resolve_provider_config(_spec_model(provider="antropic"), env={})
    assert info.value.location == "setup.yaml: model.provider"


# --- shared helpers --------------------------------------------------------------------------------


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 42, usegmt=True), now=now) == 42.0
    assert parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


def test_retry_after_from_headers_prefers_milliseconds():
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after_from_headers({"retry-after": "3"}) == 3.0
    assert retry_after_from_headers({}) is None


def test_parse_duration():
    assert parse_duration("37s") == 37.0 and parse_duration("0.5s") == 0.5
    assert parse_duration("37") is None and parse_duration(None) is None


def test_combined_seed_separates_samples_and_stays_32_bit():
    base = dict(messages=())
    assert combined_seed(Request(**base)) is None
    seeds = {combined_seed(Request(**base, seed=2**40, sample_index=i)) for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**31 for s in seeds)
    assert combined_seed(Request(**base, seed=1, sample_index=0)) != combined_seed(
        Request(**base, seed=0, sample_index=1)
    )


def test_request_sampling_overrides_configured_sampling():
    merged = merged_sampling(Sampling(temperature=0.2, max_tokens=100), Sampling(temperature=1.0, top_p=0.9))
    assert merged == {"temperature": 1.0, "max_tokens": 100, "top_p": 0.9}
