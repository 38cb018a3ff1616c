"""What a task sends: the mode (json or turns), the json-mode messages and the sampling of a spec, and the hashes that name prompts and specs (shared with `fountain render`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.generation.plan import SEED
from fountain.providers.base import Message, Sampling
from fountain.types import Turn

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.directions import Direction
    from fountain.spec.model import Spec


MODES = ("auto", "json", "turns")


def resolve_mode(spec: Spec, provider_name: str, requested: str | None = None) -> str:
    """``json`` or ``turns``: the requested mode, else the spec's; ``auto`` picks ``turns`` for the
    local model and ``json`` for API providers, and always ``json`` for legacy (Janus) prompts whose
    output format asks for JSON (they are used as written)."""
    mode = (requested or getattr(spec.generation, "mode", None) or "auto").lower()
    if mode not in MODES:
        raise FountainError(f"unknown generation mode {mode!r}", location="--mode", hint="one of auto, json, turns")
    if mode != "auto":
        return mode
    if getattr(spec, "template_style", "") == "legacy" and "json" in (spec.output_format or "").lower():
        return "json"
    return "turns" if provider_name == "local" else "json"


def short_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def messages_hash(messages: Sequence[Message]) -> str:
    return short_hash([[m.role, m.content] for m in messages])


def spec_fingerprint(spec: Spec) -> str:
    try:
        return str(spec.fingerprint())
    except NotImplementedError:
        return ""


def canonical_direction(name: str) -> Direction:
    from fountain.spec.directions import resolve_direction

    return resolve_direction(name)


# --- requests (shared with `fountain render`) ----------------------------------------------------


def json_messages(
    spec: Spec,
    task_kind: str,
    direction: str,
    *,
    persona: str | None = None,
    conversation: Sequence[Turn] = (),
    scenario: str = "",
) -> tuple[Message, ...]:
    """The messages of a json-mode request: the spec's system prompt (if any) and the prompt."""
    from fountain.spec.prompts import (
        render_derivation_prompt,
        render_seed_prompt,
        render_system_prompt,
    )

    resolved = canonical_direction(direction)
    if task_kind == SEED:
        prompt = render_seed_prompt(spec, resolved, persona=persona, scenario=scenario)
    else:
        prompt = render_derivation_prompt(spec, resolved, conversation, persona=persona, scenario=scenario)
    system = render_system_prompt(spec, resolved, persona=persona, scenario=scenario)
    return ((Message("system", system),) if system else ()) + (Message("user", prompt),)


def spec_sampling(spec: Spec, max_tokens_cap: int | None = None) -> Sampling:
    model = spec.model
    max_tokens = model.max_tokens
    if max_tokens_cap is not None:
        max_tokens = min(max_tokens, max_tokens_cap) if max_tokens else max_tokens_cap
    return Sampling(temperature=model.temperature, top_p=model.top_p, max_tokens=max_tokens)
