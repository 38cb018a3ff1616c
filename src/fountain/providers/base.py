"""The provider protocol: one async ``complete(Request) -> Completion`` for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from fountain.types import Usage


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; ``None`` means the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()  # stop sequences (the local provider; others ignore them)
    repeat_penalty: float | None = None  # llama.cpp's repeat penalty (the local provider; others ignore it)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            k: v
            for k, v in (("temperature", self.temperature), ("top_p", self.top_p), ("max_tokens", self.max_tokens))
            if v is not None
        }
        if self.stop:
            values["stop"] = list(self.stop)
        if self.repeat_penalty is not None:  # in the cache key only when set
            values["repeat_penalty"] = self.repeat_penalty
        return values


@dataclass(frozen=True)
class Request:
    """Everything that decides a model's answer.

    ``sample_index`` distinguishes N samples drawn from one prompt; ``seed`` is the run seed
    (providers that support seeding combine the two so repeated runs are reproducible).
    """

    messages: tuple[Message, ...]
    schema: dict[str, Any] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    sample_index: int = 0
    seed: int | None = None
    # Free-form tag for logs and the fake provider ("seed", "derivation", ...); not sent anywhere.
    purpose: str = ""

    def prompt_text(self) -> str:
        return "\n\n".join(m.content for m in self.messages)


@dataclass(frozen=True)
class Completion:
    text: str
    data: Any = None  # parsed JSON when the request had a schema and the text parsed
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""

    def __post_init__(self) -> None:
        # A JSON answer may decode to a lone surrogate ("\\ud83d" cut off mid-pair). No UTF-8 file
        # or SQLite cell can hold one, so it becomes U+FFFD here, before anything stores the text:
        # a cached replay then gives the very text the first run saw.
        text = self.text
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                object.__setattr__(self, "text", _without_lone_surrogates(text))


def _without_lone_surrogates(text: str) -> str:
    # Through UTF-16, a valid surrogate pair joins into its character and a lone half is replaced.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@runtime_checkable
class Provider(Protocol):
    """A model backend. Implementations are created once per run and reused for every request."""

    name: str
    model: str

    async def complete(self, request: Request) -> Completion:
        """Answer one request or raise a :class:`fountain.errors.ProviderError`."""
        ...

    def identity(self) -> dict[str, Any]:
        """What identifies this backend's answers (name, model, endpoint): part of cache keys.

        Never includes a secret.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ProviderConfig:
    """Resolved provider settings (spec model block + CLI + environment). Holds no secret."""

    provider: str = "local"
    model: str | None = None
    base_url: str | None = None
    base_urls: tuple[str, ...] = ()  # openai: a fleet of servers (base_url is then the first)
    api_key_env: str | None = None  # name of the environment variable, never the key itself
    timeout_s: float = 120.0
    sampling: Sampling = field(default_factory=Sampling)
    replay: str | None = None  # fake provider: a file of recorded outputs
    threads: int | None = None  # local provider
    context_length: int | None = None  # local provider
    extra: dict[str, Any] = field(default_factory=dict)
