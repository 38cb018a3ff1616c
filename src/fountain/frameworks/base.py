"""A framework: how rounds of generate -> rate -> select make a run's dataset.

A framework is one small class with one method, :meth:`Framework.run`, which runs engine rounds
through its :class:`~fountain.frameworks.context.RunContext`, rates with its
:class:`~fountain.frameworks.rating.Rating` and charges its
:class:`~fountain.frameworks.privacy_account.PrivacyAccount`, and returns the dataset. The runner
(:mod:`fountain.frameworks.runner`) owns the rest: setup, export, the manifest, salvage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from fountain.frameworks.context import RunContext
from fountain.frameworks.privacy_account import PrivacyAccount
from fountain.frameworks.rating import Rating
from fountain.types import Sample


class Framework(ABC):
    """``rounds``: the framework counts accepted conversations itself (an engine round never stops
    at ``--target``); ``enriches``: the model enriches the scene first (GenLLM)."""

    name: ClassVar[str]
    rounds: ClassVar[bool] = False
    enriches: ClassVar[bool] = False

    def __init__(self, ctx: RunContext, rating: Rating, privacy: PrivacyAccount):
        self.ctx = ctx
        self.rating = rating
        self.privacy = privacy

    @abstractmethod
    async def run(self) -> Sequence[Sample]:
        """Generate and rate; return the dataset (the runner exports it)."""
