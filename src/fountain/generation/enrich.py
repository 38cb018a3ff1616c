"""GenLLM scene enrichment: one model request that turns the diagram and its notes into a richer
scenario paragraph and a set of personas for the user role (Persona Hub style).

The request goes through the run's :class:`~fountain.providers.dispatch.Dispatcher` (so it is cached,
rate-limited and costed like every other request) and its answer is constrained by a JSON schema:
``{"scenario": str, "personas": [str, ...]}``. The answer is validated (a scenario of reasonable
length; personas non-empty, of reasonable length and distinct) and saved to
``<output>/enrichment.json``, which a resumed run reads instead of asking again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError
from fountain.providers.base import Message, Request, Sampling
from fountain.types import Usage

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

DEFAULT_PERSONAS = 5
MAX_PERSONAS = 100
SCENARIO_MIN_CHARS, SCENARIO_MAX_CHARS = 40, 3000
PERSONA_MIN_CHARS, PERSONA_MAX_CHARS = 8, 400
# The answer holds a paragraph and N short descriptions: about 80 tokens per persona is ample.
BASE_MAX_TOKENS, TOKENS_PER_PERSONA = 400, 80
PURPOSE = "enrich"


class EnrichmentError(FountainError):
    """The model did not produce a usable scenario and personas."""


@dataclass(frozen=True)
class Enrichment:
    """What GenLLM adds to the scene. ``requested`` is the number of personas asked for."""

    scenario: str
    personas: tuple[str, ...]
    requested: int
    provider: str = ""
    model: str = ""
    prompt_hash: str = ""
    usage: Usage = field(default_factory=Usage)
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "scenario": self.scenario,
            "personas": list(self.personas),
            "requested_personas": self.requested,
            "provider": self.provider,
            "model": self.model,
            "prompt_hash": self.prompt_hash,
            "usage": self.usage.to_dict(),
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Enrichment:
        personas = data["personas"]
        if (
            not isinstance(data["scenario"], str)
            or not isinstance(personas, list)
            or not all(isinstance(p, str) for p in personas)
        ):
            raise ValueError("scenario must be a string and personas a list of strings")
        return cls(
            data["scenario"],
            tuple(personas),
            int(data["requested_personas"]),
            str(data.get("provider") or ""),
            str(data.get("model") or ""),
            str(data.get("prompt_hash") or ""),
            Usage.from_dict(data.get("usage")),
            int(data.get("attempts") or 1),
        )

    def summary(self) -> dict[str, Any]:
        """For the manifest: counts and provenance, not the texts (they are in enrichment.json)."""
        return {
            "file": "enrichment.json",
            "personas": len(self.personas),
            "requested_personas": self.requested,
            "scenario_chars": len(self.scenario),
            "model": self.model,
            "attempts": self.attempts,
        }


def enrichment_schema(n_personas: int) -> dict[str, Any]:
    """The JSON schema of the answer: a scenario and exactly ``n_personas`` persona strings."""
    return {
        "type": "object",
        "properties": {
            "scenario": {"type": "string", "minLength": SCENARIO_MIN_CHARS, "maxLength": SCENARIO_MAX_CHARS},
            "personas": {
                "type": "array",
                "minItems": n_personas,
                "maxItems": n_personas,
                "items": {"type": "string", "minLength": PERSONA_MIN_CHARS, "maxLength": PERSONA_MAX_CHARS},
            },
        },
        "required": ["scenario", "personas"],
        "additionalProperties": False,
    }


def _role(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text.lower() if text.isupper() else text


def enrichment_messages(spec: Spec, n_personas: int) -> tuple[Message, ...]:
    """The request: the diagram, its notes and the roles in; a scenario and personas out."""
    user, assistant = _role(spec.user_role), _role(spec.assistant_role)
    notes = list(getattr(spec.diagram, "notes", ()) or ())
    parts = [
        f"We are preparing realistic conversations between a {user} (the user) and a {assistant} "
        f"(the assistant). Category: {spec.category}.",
        "The scene is described by this entity-relationship diagram (mermaid erDiagram):",
        spec.diagram_text.strip(),
    ]
    if notes:
        parts.append("Notes about the scene:\n" + "\n".join(f"- {note}" for note in notes))
    parts.append(
        "1. scenario: write one paragraph (3 to 6 sentences) that describes the scene concretely: "
        f"where and when the conversations take place, who the {user} and the {assistant} are to "
        "each other, and what is typically at stake.\n"
        f"2. personas: describe exactly {n_personas} different people who could be the {user}, "
        "one or two sentences each: age, background, situation and what they want from the "
        f"{assistant}. Make them clearly distinct from one another.\n"
        'Answer with JSON only: {"scenario": "...", "personas": ["...", "..."]}'
    )
    system = "You design realistic, varied scenes and characters for dialogue datasets."
    return (Message("system", system), Message("user", "\n\n".join(parts)))


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def check_enrichment(data: Any, n_personas: int) -> tuple[str, list[str], list[str]]:
    """Validate an answer: ``(scenario, valid distinct personas, problems)``.

    Personas that are too short or long, or repeat an earlier one (case and spacing ignored), are
    dropped and each is named in ``problems``.
    """
    problems: list[str] = []
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as error:
            # JSONDecodeError has .msg; other ValueErrors (e.g. an integer over the digit limit) have not
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            return "", [], [f"the answer is not JSON ({reason})"]
    if not isinstance(data, dict):
        return "", [], ["the answer is not a JSON object"]
    scenario = data.get("scenario")
    if not isinstance(scenario, str) or not scenario.strip():
        problems.append("the scenario is missing or empty")
        scenario = ""
    else:
        scenario = " ".join(scenario.split())
        if not SCENARIO_MIN_CHARS <= len(scenario) <= SCENARIO_MAX_CHARS:
            problems.append(
                f"the scenario has {len(scenario)} characters (expected {SCENARIO_MIN_CHARS} to {SCENARIO_MAX_CHARS})"
            )
            scenario = ""
    raw = data.get("personas")
    personas: list[str] = []
    if not isinstance(raw, list):
        problems.append("personas is not a list")
        raw = []
    seen: set[str] = set()
    for number, item in enumerate(raw, 1):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"persona {number} is empty")
            continue
        text = " ".join(item.split())
        if not PERSONA_MIN_CHARS <= len(text) <= PERSONA_MAX_CHARS:
            problems.append(
                f"persona {number} has {len(text)} characters (expected {PERSONA_MIN_CHARS} to {PERSONA_MAX_CHARS})"
            )
            continue
        if _norm(text) in seen:
            problems.append(f"persona {number} repeats an earlier one")
            continue
        seen.add(_norm(text))
        personas.append(text)
    if len(personas) < n_personas:
        problems.append(f"{len(personas)} usable persona(s), {n_personas} asked for")
    return scenario, personas[:n_personas], problems


def combine_personas(spec_personas: Sequence[str], generated: Sequence[str]) -> tuple[str, ...]:
    """The spec's personas first, then the generated ones that do not repeat one of them."""
    seen = {_norm(p) for p in spec_personas}
    out = list(spec_personas)
    for persona in generated:
        if _norm(persona) not in seen:
            seen.add(_norm(persona))
            out.append(persona)
    return tuple(out)


async def enrich_scene(
    spec: Spec,
    dispatcher: Any,
    *,
    n_personas: int = DEFAULT_PERSONAS,
    seed: int | None = None,
    max_retries: int = 2,
    temperature: float | None = None,
) -> tuple[Enrichment, list[str]]:
    """Ask the model for the scenario and ``n_personas`` personas; returns ``(enrichment, warnings)``.

    An unusable answer is asked again (a new sampling seed each time) up to ``max_retries`` times.
    When no attempt gives ``n_personas`` usable personas, the best attempt with a scenario and at
    least one persona is kept with a warning; otherwise :class:`EnrichmentError`.
    """
    import hashlib

    if not 1 <= n_personas <= MAX_PERSONAS:
        raise FountainError(
            f"--personas must lie between 1 and {MAX_PERSONAS}, got {n_personas}", location="--personas"
        )
    messages = enrichment_messages(spec, n_personas)
    prompt_hash = hashlib.sha256(
        json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:16]
    schema = enrichment_schema(n_personas)
    model = spec.model
    sampling = Sampling(
        temperature=temperature if temperature is not None else model.temperature,
        top_p=model.top_p,
        max_tokens=BASE_MAX_TOKENS + TOKENS_PER_PERSONA * n_personas,
    )
    usage = Usage()
    best: tuple[str, list[str]] | None = None
    problems: list[str] = []
    attempts = 0
    model_name = ""
    for attempt in range(max(0, max_retries) + 1):
        attempt_seed = seed if attempt == 0 else (seed or 0) + attempt * 1_000_003
        request = Request(
            messages=messages, schema=schema, sampling=sampling, sample_index=0, seed=attempt_seed, purpose=PURPOSE
        )
        completion = await dispatcher.complete(request)
        attempts += 1
        usage = usage + completion.usage
        model_name = completion.model or model_name
        payload = completion.data if completion.data is not None else completion.text
        scenario, personas, problems = check_enrichment(payload, n_personas)
        if scenario and len(personas) >= n_personas:
            best = (scenario, personas)
            break
        if scenario and personas and (best is None or len(personas) > len(best[1])):
            best = (scenario, personas)
    provider = getattr(dispatcher, "provider", None)
    provider_name = str(getattr(provider, "name", "") or "")
    if model_name == "":
        model_name = str(getattr(provider, "model", "") or "")
    if best is None:
        raise EnrichmentError(
            f"the model gave no usable scenario and personas in {attempts} attempt(s): " + "; ".join(problems[:4]),
            location="GenLLM enrichment",
            hint="try a stronger model (--provider/--model), fewer --personas, or --framework Gen",
        )
    warnings = []
    if len(best[1]) < n_personas:
        warnings.append(
            f"GenLLM: {n_personas} personas asked for, the model gave {len(best[1])} "
            "usable distinct ones; the run uses those"
        )
    return (
        Enrichment(best[0], tuple(best[1]), n_personas, provider_name, model_name, prompt_hash, usage, attempts),
        warnings,
    )
