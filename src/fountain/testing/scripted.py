"""A provider that answers from a script: for tests of the request path (dispatcher, retries,
stops, accounting) without a server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fountain.providers.base import Completion, Request
from fountain.types import Usage


class ScriptedProvider:
    """Each call takes the next step of ``script``: an exception instance is raised, anything else
    (or an empty script) answers ``"answer N"`` with ``usage``. ``calls`` records every request."""

    name = "openai"

    def __init__(self, script: Iterable[Any] = (), model: str = "gpt-4o-mini", usage: Usage | None = None) -> None:
        self.model = model
        self.script = list(script)
        self.calls: list[Request] = []
        self.usage = usage if usage is not None else Usage(1000, 500)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "base_url": "http://mock"}

    async def complete(self, request: Request) -> Completion:
        self.calls.append(request)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
        return Completion(text=f"answer {len(self.calls)}", usage=self.usage, model=self.model)

    async def aclose(self) -> None:
        pass
