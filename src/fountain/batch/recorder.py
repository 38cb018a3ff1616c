"""The models a batch run gives the generation worker: one that records what it cannot answer
(the first pass of each round), and a provider that answers only from the cache (the final run)."""

from __future__ import annotations

from typing import Any

from fountain.errors import ProviderError
from fountain.providers.base import Completion, Request
from fountain.providers.cache import ResponseCache, request_key


class Pending(Exception):
    """A request that has no answer yet: its task waits for a batch job."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class RecordingModel:
    """Answers from the response cache; records (by cache key) and raises :class:`Pending` for
    a request it has no answer to, so the task stops there until a batch answers it."""

    def __init__(self, cache: ResponseCache, identity: dict[str, Any]):
        self.cache = cache
        self.identity = identity
        self.missing: dict[str, Request] = {}

    def key(self, request: Request) -> str:
        return request_key(self.identity, request)

    async def complete(self, request: Request) -> Completion:
        key = self.key(request)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.missing.setdefault(key, request)
        raise Pending(key)


class CacheOnlyProvider:
    """The run's provider as the final pass of a batch run sees it: the same name and identity
    (so the cache keys are the same), but it never calls the API. The dispatcher answers every
    request from the cache; one that reaches this provider had no batch answer (its line errored
    or expired too often) and becomes a ``provider_error`` reject with the batch's reason."""

    def __init__(self, provider: Any, failures: dict[str, str], identity: dict[str, Any]):
        self._provider = provider
        self.name = provider.name
        self.model = getattr(provider, "model", None)
        self.base_url = getattr(provider, "base_url", None)
        self.sampling = getattr(provider, "sampling", None)
        self._failures = failures
        self._identity = identity
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return self._provider.identity()

    async def complete(self, request: Request) -> Completion:
        self.calls += 1
        reason = self._failures.get(request_key(self._identity, request), "no answer from the batch jobs")
        raise ProviderError(
            f"{self.name} batch: {reason}",
            hint="run the same command again to resubmit it (at most a few times), or without --batch",
        )

    async def aclose(self) -> None:
        return None
