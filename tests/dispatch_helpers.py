"""The dispatcher tests' recorded sleeps, requests and price table."""

from __future__ import annotations

from fountain.providers.base import Message, Request, Sampling
from fountain.providers.cost import Price, PriceTable


class Sleeps:
    def __init__(self):
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)


def request(i: int = 0, **sampling) -> Request:
    return Request(messages=(Message("user", f"prompt {i}"),), sample_index=i, sampling=Sampling(**sampling))


PRICES = PriceTable({"openai": {"gpt-4o-mini": Price(1.0, 2.0)}})  # $1 / $2 per 1M tokens
