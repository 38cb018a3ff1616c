"""The judge's settings: which provider judges, against which rubric, with which threshold.

Read from setup.yaml's ``judge:`` block and ``fountain run --judge PROVIDER[:MODEL]`` (the CLI
names the provider and model; the block gives everything else). The JSON schema
(``schemas/setup.schema.json``) checks the block's shape; :func:`judge_settings` checks what a
schema cannot (a rubric with a reserved name, a threshold above the scale) and says where.

Scores are integers on a 1..:data:`SCALE` scale (1: fails the criterion, 5: fully meets it). A
conversation is rejected when any criterion scores below ``threshold`` (default 3): the reject
reason is ``judge:<criterion>`` of its lowest score.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fountain.errors import FountainError

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec

SCALE = 5  # scores are integers 1..SCALE
DEFAULT_THRESHOLD = 3
DEFAULT_MAX_RETRIES = 2  # re-asks after a malformed judge answer
RESERVED = ("overall", "malformed")  # reject reasons of the judge itself, never a criterion
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Criterion:
    """One line of the rubric: a short name (the reject reason's suffix) and what it asks."""

    name: str
    description: str


DEFAULT_RUBRIC: tuple[Criterion, ...] = (
    Criterion(
        "in_role",
        "Each side stays in its role the whole time: the user speaks only as the user role (asks, "
        "tells, reacts) and never as the assistant role, and the assistant never speaks as the user.",
    ),
    Criterion(
        "grounded",
        "The conversation is about the scene: it uses the facts of the diagram (its entities, "
        "attributes and notes) and does not drift to unrelated topics or invent a different setting.",
    ),
    Criterion(
        "direction",
        "The conversation follows its direction. For a derivation: the continuation changes the "
        "parent conversation the way its direction asks (deeper, more concrete, more constrained, "
        "more reasoning...), instead of repeating or ignoring it.",
    ),
    Criterion(
        "helpful_safe",
        "The assistant's answers are helpful, specific and correct for the scene, and nothing in the "
        "conversation is harmful, unsafe or inappropriate.",
    ),
)


@dataclass(frozen=True)
class JudgeSettings:
    """Everything that decides the judge's verdicts (and so a resume's compatibility)."""

    provider: str | None = None  # None: the run's own provider
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    timeout_s: float | None = None
    structured_output: str | None = None
    threshold: int = DEFAULT_THRESHOLD
    max_retries: int = DEFAULT_MAX_RETRIES
    rubric: tuple[Criterion, ...] = DEFAULT_RUBRIC

    @property
    def criteria(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.rubric)

    def rubric_fingerprint(self) -> str:
        """A hash of what the verdict depends on besides the provider: rubric, scale, threshold."""
        data = {
            "scale": SCALE,
            "threshold": self.threshold,
            "rubric": [[c.name, c.description] for c in self.rubric],
        }
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def judge_settings(spec: Spec, cli: str | None = None) -> JudgeSettings | None:
    """The run's judge, or None when it has none.

    ``cli`` is ``--judge PROVIDER[:MODEL]`` (``none``/``off``: no judge, whatever the spec says);
    without it, the spec's ``judge:`` block decides (``enabled: false`` turns it off).
    """
    data = getattr(spec, "data", None)
    block = data.get("judge") if isinstance(data, dict) else None
    if cli is not None and cli.strip().lower() in ("none", "off", "no", "false"):
        return None
    if block is not None and not isinstance(block, dict):
        raise _error(spec, "judge", "the judge block must be a mapping", "judge: {provider: openai, threshold: 3}")
    block = dict(block or {})
    if cli is None and (not block or block.get("enabled") is False):
        return None
    provider, model = block.get("provider"), block.get("model")
    where = (getattr(spec, "locations", None) or {}).get("judge.provider") or "setup.yaml: judge.provider"
    if cli is not None:
        provider, model = _parse_cli(cli)
        where = "--judge"
        if provider is None:  # "--judge :MODEL": the spec's provider, this model
            provider = block.get("provider")
    if _text(provider) is not None:
        from fountain.providers import check_provider_name

        provider = check_provider_name(str(provider), location=where)
    settings = JudgeSettings(
        provider=_text(provider),
        model=_text(model),
        base_url=_text(block.get("base_url")),
        api_key_env=_text(block.get("api_key_env")),
        temperature=_number(block.get("temperature"), JudgeSettings.temperature),
        max_tokens=int(block["max_tokens"]) if block.get("max_tokens") is not None else JudgeSettings.max_tokens,
        timeout_s=_number(block.get("timeout_s"), None),
        structured_output=_text(block.get("structured_output")),
        threshold=int(block.get("threshold", DEFAULT_THRESHOLD)),
        max_retries=int(block.get("max_retries", DEFAULT_MAX_RETRIES)),
        rubric=_rubric(spec, block.get("rubric")),
    )
    if not 1 <= settings.threshold <= SCALE:
        raise _error(
            spec,
            "judge.threshold",
            f"the judge's threshold {settings.threshold} is outside the 1..{SCALE} score scale",
            f"a conversation is rejected when a criterion scores below the threshold: use 1 to {SCALE} (default 3)",
        )
    return settings


def _parse_cli(value: str) -> tuple[str | None, str | None]:
    """``PROVIDER[:MODEL]`` -> (provider, model); a model may itself hold colons (``llama3:8b``)."""
    provider, _, model = value.strip().partition(":")
    return (provider.strip() or None), (model.strip() or None)


def _rubric(spec: Spec, value: Any) -> tuple[Criterion, ...]:
    """The rubric of the ``judge.rubric`` mapping (name -> description); the default without one."""
    if value is None:
        return DEFAULT_RUBRIC
    if not isinstance(value, dict) or not value:
        raise _error(
            spec,
            "judge.rubric",
            "the judge's rubric must be a mapping of criterion names to descriptions",
            "rubric:\n    in_role: The user never speaks as the assistant.\n    grounded: Uses the scene's facts.",
        )
    out = []
    for name, description in value.items():
        where = f"judge.rubric.{name}"
        if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
            raise _error(
                spec,
                where,
                f"the rubric criterion name {name!r} cannot be used",
                "a criterion name is lower case letters, digits and _ (up to 40, starting with a letter), "
                f"not {' or '.join(RESERVED)}: it becomes the reject reason judge:<name>",
            )
        if not isinstance(description, str) or not description.strip():
            raise _error(
                spec,
                where,
                f"the rubric criterion {name!r} has no description",
                "write what the judge should check, e.g. 'The assistant never invents facts.'",
            )
        out.append(Criterion(name, " ".join(description.split())))
    return tuple(out)


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _number(value: Any, default: float | None) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _error(spec: Spec, key: str, message: str, hint: str) -> FountainError:
    from fountain.errors import SpecError

    locations = getattr(spec, "locations", None) or {}
    where = locations.get(key) or locations.get(key.rsplit(".", 1)[0]) or locations.get("judge")
    location = where or f"{getattr(spec, 'path', 'setup.yaml')}: {key}"
    return SpecError(message, location=location, hint=hint)
