"""The judge: one model scores each accepted conversation against the spec's rubric.

:class:`Judge` asks its model (through a :class:`~fountain.providers.dispatch.Dispatcher`: cache,
limiter, retries, cost and budget like any request) for a JSON verdict, ``{"scores": {criterion:
1..5}, "reason": "..."}``, with the request's JSON schema so providers that constrain decoding
do. The answer crosses the tolerant boundary (:func:`fountain.providers.answers.parse_data`); a
malformed verdict (not JSON, a criterion missing, a score off the scale) is asked again with
another ``sample_index`` (so each try is its own cache entry and a resume replays them all
without paying), up to ``max_retries`` times, then recorded as a :class:`Verdict` with
``malformed`` set: the conversation is rejected ``judge:malformed``, never a crash.

A seed is judged on its own direction; a derivation is shown its parent conversation and judged
on whether its continuation follows its Evol direction relative to that parent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fountain.providers.answers import parse_data
from fountain.providers.base import Completion, Message, Request, Sampling
from fountain.raters.judge_rubric import SCALE, JudgeSettings
from fountain.types import Sample, Usage

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

PURPOSE = "judge"
SCHEMA_TITLE = "fountain_judgement"
# The first words of the judge's system message: how the test doubles (fake provider, mock server)
# recognise a judge request when no schema reaches them.
MARKER = "You are fountain's judge"
MAX_SCENE_CHARS = 4000  # the diagram shown to the judge
MAX_REASON_CHARS = 400
RETRY_TEMPERATURE = 0.7  # the sampling temperature of a re-ask after a malformed verdict

SYSTEM = (
    f"{MARKER}: you grade synthetic conversations that will train a chat model. Read the scene, "
    "the direction and the conversation, then score each rubric criterion from 1 (fails it) to "
    f"{SCALE} (fully meets it); 3 is acceptable. Be strict: a conversation a careful reader would "
    "not train on scores low. Reply with JSON only."
)


@dataclass(frozen=True)
class Verdict:
    """The judge's verdict on one conversation."""

    scores: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    malformed: str = ""  # why no usable verdict came back (after the retries); "" when there is one
    attempts: int = 1
    usage: Usage = field(default_factory=Usage)
    model: str = ""

    @property
    def overall(self) -> float:
        """The mean score over the criteria (0.0 without a verdict)."""
        return round(sum(self.scores.values()) / len(self.scores), 3) if self.scores else 0.0

    def failed(self, settings: JudgeSettings) -> str | None:
        """The criterion that rejects the conversation (its lowest score below the threshold,
        the rubric's first on a tie), ``"malformed"`` without a verdict, or None: it passes."""
        if self.malformed:
            return "malformed"
        below = [(self.scores[c], i, c) for i, c in enumerate(settings.criteria) if self.scores[c] < settings.threshold]
        return min(below)[2] if below else None

    def metadata(self, settings: JudgeSettings, identity: str) -> dict[str, Any]:
        """What a record's ``metadata.judge`` holds."""
        return {
            "scores": dict(self.scores),
            "overall": self.overall,
            "reason": self.reason,
            "threshold": settings.threshold,
            "judge": identity,
            "rubric": settings.rubric_fingerprint(),
        }


def judge_schema(settings: JudgeSettings) -> dict[str, Any]:
    """The JSON schema of a verdict (strict-mode friendly: every property required, no extras)."""
    score = {"type": "integer", "minimum": 1, "maximum": SCALE}
    return {
        "title": SCHEMA_TITLE,
        "type": "object",
        # The reason comes first: a model that writes its judgement before the numbers scores
        # what it wrote (constrained decoding emits the properties in this order).
        "properties": {
            "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
            "scores": {
                "type": "object",
                "properties": {name: dict(score) for name in settings.criteria},
                "required": list(settings.criteria),
                "additionalProperties": False,
            },
        },
        "required": ["reason", "scores"],
        "additionalProperties": False,
    }


def _conversation(sample: Sample, user: str, assistant: str, start: int = 0) -> str:
    lines = []
    for number, turn in enumerate(sample.turns[start:], start=start + 1):
        lines.append(f"[{number}] {user}: {turn.user}")
        lines.append(f"[{number}] {assistant}: {turn.assistant}")
    return "\n".join(lines)


def _direction_text(name: str) -> str:
    from fountain.spec.directions import resolve_direction

    try:
        return resolve_direction(name).instructions
    except Exception:  # noqa: BLE001 - a direction the spec already accepted; its name alone will do
        return name


def judge_prompt(spec: Spec, settings: JudgeSettings, sample: Sample, parent: Sample | None) -> str:
    """The user message of a judge request for ``sample`` (``parent``: a derivation's parent)."""
    user, assistant = spec.user_role or "USER", spec.assistant_role or "ASSISTANT"
    prov = sample.provenance
    scene = (spec.diagram_text or "").strip()
    if len(scene) > MAX_SCENE_CHARS:
        scene = scene[:MAX_SCENE_CHARS] + "\n[...]"
    parts = [
        f"Scene: {spec.category}. The user is the {user}; the assistant is the {assistant}.",
        f"Facts of the scene (a mermaid entity diagram; %% lines are notes):\n{scene}",
    ]
    direction = f'Direction "{prov.direction}": {_direction_text(prov.direction)}'
    if prov.kind == "derivation" and parent is not None:
        kept = max(0, min(prov.prefix_turns, len(sample.turns)))
        parts.append(
            f"This conversation is a derivation. Its parent conversation was:\n{_conversation(parent, user, assistant)}"
        )
        parts.append(
            f"The derivation keeps the parent's first {kept} turn(s) and continues from there. {direction}\n"
            "Judge the criterion 'direction' on whether the new turns (after the kept ones) follow this "
            "direction relative to the parent."
        )
        parts.append(f"The derivation to judge:\n{_conversation(sample, user, assistant)}")
    else:
        parts.append(f"{direction}\nJudge the criterion 'direction' on whether the conversation follows it.")
        parts.append(f"The conversation to judge:\n{_conversation(sample, user, assistant)}")
    rubric = "\n".join(f"- {c.name}: {c.description}" for c in settings.rubric)
    parts.append(f"Rubric (score each criterion with an integer from 1 to {SCALE}):\n{rubric}")
    example = ", ".join(f'"{name}": <1-{SCALE}>' for name in settings.criteria)
    parts.append(
        'Reply with JSON only, in this shape (integers for the scores): {"reason": "<the main weakness in '
        f'one short sentence, or why it is good>", "scores": {{{example}}}}}'
    )
    return "\n\n".join(parts)


def parse_verdict(completion: Completion, settings: JudgeSettings) -> tuple[dict[str, int], str] | str:
    """(scores, reason) from a judge's answer, or the reason it is unusable (a short text)."""
    data = completion.data
    if not isinstance(data, dict):
        data = parse_data(completion.text.strip(), strict=False)
    if not isinstance(data, dict):
        data = _embedded_object(completion.text)
    if not isinstance(data, dict):
        return "not JSON"
    scores = data.get("scores")
    if not isinstance(scores, dict):
        return "no scores object"
    out: dict[str, int] = {}
    for name in settings.criteria:
        value = scores.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"no score for {name}"
        if value != int(value) or not 1 <= value <= SCALE:
            return f"score {value!r} for {name} is not an integer from 1 to {SCALE}"
        out[name] = int(value)
    reason = data.get("reason")
    text = " ".join(reason.split())[:MAX_REASON_CHARS] if isinstance(reason, str) else ""
    return out, text


def _embedded_object(text: str) -> Any:
    """The JSON object inside prose or a code fence (from the first "{" to the last "}")."""
    start, end = text.find("{"), text.rfind("}")
    return parse_data(text[start : end + 1], strict=False) if 0 <= start < end else None


class Judge:
    """Scores conversations with ``complete`` (a Dispatcher's, or any awaitable request path)."""

    def __init__(
        self,
        spec: Spec,
        settings: JudgeSettings,
        complete: Callable[[Request], Awaitable[Completion]],
        *,
        seed: int | None = None,
    ):
        self.spec = spec
        self.settings = settings
        self.complete = complete
        self.seed = seed
        self.schema = judge_schema(settings)
        self.sampling = Sampling(temperature=settings.temperature, max_tokens=settings.max_tokens)

    def request(self, sample: Sample, parent: Sample | None, attempt: int = 0) -> Request:
        """The request for one try (``attempt`` 0, 1, ...: each its own cache entry)."""
        messages = (
            Message("system", SYSTEM),
            Message("user", judge_prompt(self.spec, self.settings, sample, parent)),
        )
        sampling = self.sampling
        if attempt and (sampling.temperature or 0.0) < RETRY_TEMPERATURE:
            # A re-ask at temperature 0 would get the same malformed answer again.
            sampling = Sampling(temperature=RETRY_TEMPERATURE, max_tokens=sampling.max_tokens)
        return Request(
            messages, schema=self.schema, sampling=sampling, sample_index=attempt, seed=self.seed, purpose=PURPOSE
        )

    async def judge(self, sample: Sample, parent: Sample | None = None) -> Verdict:
        """The verdict on ``sample``; provider errors (after the dispatcher's retries) propagate."""
        usage = Usage()
        problem = ""
        model = ""
        tries = max(0, self.settings.max_retries) + 1
        for attempt in range(tries):
            completion = await self.complete(self.request(sample, parent, attempt))
            usage = usage + completion.usage
            model = completion.model or model
            parsed = parse_verdict(completion, self.settings)
            if isinstance(parsed, str):
                problem = f"{parsed}: {completion.text[:160]!r}"
                continue
            scores, reason = parsed
            return Verdict(scores, reason, attempts=attempt + 1, usage=usage, model=model)
        return Verdict(malformed=problem, attempts=tries, usage=usage, model=model)
