"""The requests a run would send first, built without calling a model (`fountain render`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fountain.generation.plan import DERIVATION, SEED
from fountain.generation.requests import canonical_direction, json_messages, spec_sampling
from fountain.generation.rules import Rules
from fountain.generation.shape import request_schema
from fountain.providers.base import Request
from fountain.types import Turn

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

PLACEHOLDER = (
    Turn("(the user's first message)", "(the assistant's first answer)"),
    Turn("(the user's second message)", "(the assistant's second answer)"),
)


def preview_requests(
    spec: Spec, *, mode: str, direction: str | None = None, seed: int | None = None
) -> list[tuple[str, Request]]:
    """The requests a run would send first, without calling a model: a seed request and a
    derivation request built from a placeholder conversation (turn-by-turn mode: the user's
    first utterance, the assistant's answer, and the user's next line in a derivation)."""
    rules = Rules.from_spec(spec)
    seed_direction = direction or spec.seed_directions[0]
    derivational = list(spec.derivational_directions)
    derive_direction = direction if direction in derivational else (derivational[0] if derivational else seed_direction)
    persona = spec.personas[0] if getattr(spec, "personas", ()) else None
    instruct = spec.generation.type == "instruct"
    example = PLACEHOLDER[:1] if instruct else PLACEHOLDER
    out: list[tuple[str, Request]] = []
    if mode == "json":
        schema = request_schema(rules)
        sampling = spec_sampling(spec)
        out.append(
            (
                f"seed request (direction {seed_direction!r})",
                Request(json_messages(spec, SEED, seed_direction, persona=persona), schema, sampling, 0, seed, SEED),
            )
        )
        out.append(
            (
                f"derivation request (direction {derive_direction!r}, placeholder conversation)",
                Request(
                    json_messages(spec, DERIVATION, derive_direction, persona=persona, conversation=example),
                    schema,
                    sampling,
                    0,
                    seed,
                    DERIVATION,
                ),
            )
        )
        return out
    from fountain.generation.roleplay import Roleplay

    roleplay = Roleplay.from_spec(spec)
    seed_instr = canonical_direction(seed_direction).instructions
    derive_instr = canonical_direction(derive_direction).instructions
    user_sampling = spec_sampling(spec, roleplay.max_tokens("user"))
    assistant_sampling = spec_sampling(spec, roleplay.max_tokens("assistant"))
    out.append(
        (
            f"seed, user turn 1 (direction {seed_direction!r})",
            Request(roleplay.user_messages(seed_instr, persona, ()), None, user_sampling, 0, seed, "seed:user"),
        )
    )
    out.append(
        (
            f"seed, assistant turn 1 (direction {seed_direction!r})",
            Request(
                roleplay.assistant_messages(seed_instr, (), example[0].user),
                None,
                assistant_sampling,
                0,
                seed,
                "seed:assistant",
            ),
        )
    )
    history = () if instruct else example
    shown = example if instruct else ()
    out.append(
        (
            f"derivation, next user turn (direction {derive_direction!r}, placeholder conversation)",
            Request(
                roleplay.user_messages(derive_instr, persona, history, shown),
                None,
                user_sampling,
                0,
                seed,
                "derivation:user",
            ),
        )
    )
    return out
