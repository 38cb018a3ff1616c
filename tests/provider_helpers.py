"""What the provider adapter tests (anthropic, gemini, openai against the loopback mock server)
share: the conversation schema they ask for, a request, and a fixture body that builds the
adapter with its key in the environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fountain.providers import create_provider
from fountain.providers.base import Message, ProviderConfig, Request


def conversation_schema(min_items: int = 1, max_items: int = 3) -> dict[str, Any]:
    """A strict object schema: ``conversations``, a list of ``{user, assistant}`` turns."""
    turn = {
        "type": "object",
        "additionalProperties": False,
        "required": ["user", "assistant"],
        "properties": {
            "user": {"type": "string", "minLength": 1},
            "assistant": {"type": "string", "minLength": 1},
        },
    }
    return {
        "title": "conversation",
        "type": "object",
        "additionalProperties": False,
        "required": ["conversations"],
        "properties": {"conversations": {"type": "array", "minItems": min_items, "maxItems": max_items, "items": turn}},
    }


#: A system message and one user turn.
MESSAGES = (Message("system", "You write dialogues."), Message("user", "Write one."))


def make_request(**fields: Any) -> Request:
    """A request of :data:`MESSAGES`, no schema, seed 7, sample 1, unless ``fields`` say otherwise."""
    values: dict[str, Any] = {"messages": MESSAGES, "schema": None, "seed": 7, "sample_index": 1, **fields}
    return Request(**values)


def provider_maker(
    monkeypatch: Any, provider: str, *, env: dict[str, str], model: str, base_url: str, unset: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """Set the adapter's key variables (``env``; ``unset`` removed) and return a builder of
    ``provider`` against ``base_url`` (each config key overridable; a 5 s timeout). Each test
    closes the provider it builds: the session belongs to the test's event loop."""
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def build(**config: Any) -> Any:
        config.setdefault("model", model)
        config.setdefault("base_url", base_url)
        config.setdefault("timeout_s", 5.0)
        return create_provider(ProviderConfig(provider=provider, **config))

    return build
