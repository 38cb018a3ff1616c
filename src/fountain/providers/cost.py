"""Token prices and cost: what a request cost, and what a whole run will cost before it starts.

Prices live in package data (``fountain/data/prices.json``, USD per 1M input/output tokens);
a user table given with ``--prices FILE`` or ``FOUNTAIN_PRICES`` replaces entries of it.
An unknown model costs ``None`` (with one warning), never a crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.types import Usage

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

log = logging.getLogger("fountain.providers.cost")

PRICES_ENV = "FOUNTAIN_PRICES"
FREE_PROVIDERS = frozenset({"local", "fake"})
# A dated snapshot ("gpt-4o-2024-08-06", "claude-3-5-haiku@20241022") uses its base model's price.
_BOUNDARIES = ("-", "@", ":", "/")

# Rough completion sizes per turn (user line + assistant answer) when nothing bounds them better.
TURN_TOKENS_LOW = 60
TURN_TOKENS_HIGH = 300


@dataclass(frozen=True)
class Price:
    """USD per 1,000,000 tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1_000_000


def estimate_tokens(text: str) -> int:
    """Token estimate for English-like text: about four characters per token."""
    return math.ceil(len(text) / 4) if text else 0


def _normalise(model: str) -> str:
    model = model.strip().lower()
    return model[len("models/") :] if model.startswith("models/") else model


class PriceTable:
    """Prices by provider and model. Build with :meth:`load`."""

    def __init__(self, prices: dict[str, dict[str, Price]], *, sources: tuple[str, ...] = ()):
        self._prices = {p.lower(): {_normalise(m): v for m, v in models.items()} for p, models in prices.items()}
        self.sources = sources
        self.unknown: set[tuple[str, str]] = set()  # (provider, model) pairs met without a price

    @classmethod
    def load(cls, override: str | Path | None = None) -> PriceTable:
        """The packaged table, with ``override`` (or ``$FOUNTAIN_PRICES``) applied on top."""
        from fountain.resources import read_text

        table = _parse(json.loads(read_text("data", "prices.json")), "fountain/data/prices.json")
        sources = ["fountain/data/prices.json"]
        path = override if override is not None else os.environ.get(PRICES_ENV) or None
        if path is not None:
            path = Path(path)
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except OSError as error:
                raise FountainError(
                    f"cannot read the price table: {error.strerror or error}",
                    location=str(path),
                    hint=f"give an existing JSON file with --prices FILE (or fix {PRICES_ENV})",
                ) from None
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise FountainError(
                    f"the price table is not valid JSON: {error}",
                    location=str(path),
                    hint='expected {"openai": {"gpt-4o": {"input": 2.5, "output": 10}}}',
                ) from None
            for provider, models in _parse(raw, str(path)).items():
                table.setdefault(provider, {}).update(models)
            sources.append(str(path))
        return cls(table, sources=tuple(sources))

    def lookup(self, provider: str, model: str | None) -> Price | None:
        """The price of ``model`` at ``provider``: exact name, else the longest listed prefix
        followed by a separator, else the provider's ``*`` entry, else None."""
        models = self._prices.get((provider or "").lower())
        if not models:
            return None
        name = _normalise(model or "")
        if name in models:
            return models[name]
        best: str | None = None
        for listed in models:
            if (
                listed != "*"
                and name.startswith(listed)
                and name[len(listed)] in _BOUNDARIES
                and (best is None or len(listed) > len(best))
            ):
                best = listed
        if best is not None:
            return models[best]
        return models.get("*")

    def cost(self, provider: str, model: str | None, usage: Usage) -> float | None:
        """USD cost of ``usage``; None (and one warning per model) when no price is known."""
        price = self.lookup(provider, model)
        if price is None:
            key = ((provider or "").lower(), model or "")
            if key not in self.unknown:
                self.unknown.add(key)
                log.warning(
                    "no price known for %s model %r: its cost is not counted (add it with --prices FILE)",
                    provider,
                    model,
                )
            return None
        return price.cost(usage)


def _parse(raw: Any, where: str) -> dict[str, dict[str, Price]]:
    if not isinstance(raw, dict):
        raise FountainError(
            "the price table must be a JSON object of providers",
            location=where,
            hint='expected {"openai": {"gpt-4o": {"input": 2.5, "output": 10}}}',
        )
    table: dict[str, dict[str, Price]] = {}
    for provider, models in raw.items():
        if str(provider).startswith("_"):
            continue  # comments / metadata
        if not isinstance(models, dict):
            raise FountainError(
                f"{provider!r} must map model names to prices",
                location=where,
                hint='e.g. "openai": {"gpt-4o": {"input": 2.5, "output": 10}}',
            )
        for model, entry in models.items():
            ok = isinstance(entry, dict) and all(
                isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool) and entry[k] >= 0
                for k in ("input", "output")
            )
            if not ok:
                raise FountainError(
                    f"bad price for {provider}/{model}: {entry!r}",
                    location=f"{where}: {provider}.{model}",
                    hint='give USD per 1M tokens: {"input": 2.5, "output": 10}',
                )
            table.setdefault(str(provider).lower(), {})[str(model)] = Price(
                float(entry["input"]), float(entry["output"])
            )
    return table


# --- estimating a run before it starts ---------------------------------------------------------


@dataclass(frozen=True)
class RunEstimate:
    """What ``fountain run --dry-run`` reports. Unpacks as the 4-tuple
    ``(seed_calls, derivation_calls_max, cost_low, cost_high)``.

    - ``seed_conversations``: exact. ``seed_calls``: the requests they take on first tries (exact
      in ``json`` mode, one per conversation; in ``turns`` mode two per turn, so at least
      ``2 * min_turns`` each: ``seed_calls_exact`` is False).
    - ``derivation_conversations_max`` / ``derivation_calls_max``: if every seed is accepted with
      the most turns (an upper bound: rejected or shorter seeds derive less); ``..._min``: every
      seed accepted with the fewest turns.
    - ``calls_max``: seeds and derivations with every validation retry used.
    - ``cost_low``: the seeds and the derivations of the fewest-turns case, each answered first
      time, each answer short. ``cost_high``: ``calls_max`` requests, each answer as long as
      allowed. Both None when the model has no known price.
    """

    seed_calls: int
    derivation_calls_max: int
    cost_low: float | None
    cost_high: float | None
    seed_conversations: int = 0
    seed_calls_exact: bool = True
    derivation_conversations_max: int = 0
    derivation_conversations_min: int = 0
    derivation_calls_min: int = 0
    calls_max: int = 0
    prompt_tokens_per_call: int = 0
    completion_tokens_low: int = 0
    completion_tokens_high: int = 0
    mode: str = "json"
    price: Price | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.seed_calls, self.derivation_calls_max, self.cost_low, self.cost_high))

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "price"}
        out["price"] = None if self.price is None else {"input": self.price.input, "output": self.price.output}
        return out


def _prefix_count(turns: int, max_prefix: int | None) -> int:
    """Prefixes a seed of ``turns`` turns derives from: 1..turns (capped by max_prefix_turns)."""
    return max(0, min(turns, max_prefix) if max_prefix else turns)


def estimate_run(
    spec: Spec,
    prices: PriceTable,
    provider: str,
    model: str | None,
    *,
    mode: str = "json",
    prompt_tokens: tuple[int, int] | None = None,
    token_counter: Any = None,
) -> RunEstimate:
    """Calls and a cost range for ``spec`` (see :class:`RunEstimate`), without calling a model.

    ``mode``: ``json`` (one request per conversation) or ``turns`` (one per utterance).
    ``prompt_tokens``: (seed, derivation) prompt sizes of rendered requests when the caller has
    them (``fountain run --dry-run`` renders the first requests); otherwise estimated from the
    templates. ``token_counter(text) -> int`` counts tokens (default: characters / 4).
    """
    count = token_counter or estimate_tokens
    gen = spec.generation
    instruct = getattr(gen, "type", "conversation") == "instruct"
    personas = max(1, len(getattr(spec, "personas", ()) or ()))
    from fountain.spec.directions import distinct_directions  # aliases are one direction

    seeds = len(distinct_directions(spec.seed_directions)) * gen.seeds_per_direction * personas
    min_turns = 1 if instruct else max(1, gen.min_turns)
    max_turns = 1 if instruct else max(min_turns, gen.max_turns)
    per_prefix = len(distinct_directions(spec.derivational_directions)) * max(0, gen.derivations_per_direction)
    derivations_max = seeds * (1 if instruct else _prefix_count(max_turns, gen.max_prefix_turns)) * per_prefix
    derivations_min = seeds * (1 if instruct else _prefix_count(min_turns, gen.max_prefix_turns)) * per_prefix
    attempts = 1 + max(0, getattr(gen, "max_retries", 0))
    max_tokens = getattr(spec.model, "max_tokens", None)

    if prompt_tokens is None:
        longest = max((len(d) for d in (*spec.seed_directions, *spec.derivational_directions)), default=0)
        fixed = "\n".join(
            filter(
                None,
                (
                    spec.diagram_text,
                    spec.output_format,
                    spec.user_role,
                    spec.assistant_role,
                    spec.category,
                    spec.delimiter,
                    getattr(spec, "system_prompt", None),
                ),
            )
        )
        prompt_tokens = (
            count(spec.initial_prompt + "\n" + fixed) + math.ceil(longest / 4),
            count(spec.derivational_prompt + "\n" + fixed) + math.ceil(longest / 4),
        )
    seed_prompt, derivation_prompt = prompt_tokens

    if mode == "turns":
        # Two requests (user, assistant) per turn; each answers one utterance.
        calls_low, calls_high = 2 * min_turns, 2 * max_turns
        completion_low = TURN_TOKENS_LOW // 2
        completion_high = max_tokens or TURN_TOKENS_HIGH // 2
        history_low, history_high = min_turns * TURN_TOKENS_LOW // 2, max_turns * TURN_TOKENS_HIGH // 2
    else:
        calls_low = calls_high = 1
        completion_low = min_turns * TURN_TOKENS_LOW
        completion_high = max_tokens or max_turns * TURN_TOKENS_HIGH
        history_low = history_high = 0
    if max_tokens:
        completion_low = min(completion_low, max_tokens)

    seed_calls = seeds * calls_low
    derivation_calls_max = derivations_max * calls_high
    derivation_calls_min = derivations_min * calls_low
    calls_max = (seeds * calls_high + derivation_calls_max) * attempts

    price = prices.lookup(provider, model)
    cost_low = cost_high = None
    if price is not None:
        # A derivation prompt also carries its prefix: about half a seed's turns.
        low = Usage(
            seed_calls * (seed_prompt + history_low)
            + derivation_calls_min * (derivation_prompt + history_low + min_turns * TURN_TOKENS_LOW // 2),
            (seed_calls + derivation_calls_min) * completion_low,
        )
        high = Usage(
            seeds * calls_high * attempts * (seed_prompt + history_high)
            + derivation_calls_max * attempts * (derivation_prompt + history_high + max_turns * TURN_TOKENS_HIGH),
            calls_max * completion_high,
        )
        cost_low, cost_high = price.cost(low), price.cost(high)
    return RunEstimate(
        seed_calls,
        derivation_calls_max,
        cost_low,
        cost_high,
        seed_conversations=seeds,
        seed_calls_exact=mode != "turns",
        derivation_conversations_max=derivations_max,
        derivation_conversations_min=derivations_min,
        derivation_calls_min=derivation_calls_min,
        calls_max=calls_max,
        prompt_tokens_per_call=seed_prompt,
        completion_tokens_low=completion_low,
        completion_tokens_high=completion_high,
        mode=mode,
        price=price,
    )
