"""Render the prompts of a spec: Jinja2 templates with named variables, or legacy positional ``%s``.

Two template styles exist side by side:

* **jinja** — ``{{ variable }}`` templates rendered in a :class:`jinja2.sandbox.SandboxedEnvironment`
  with :class:`jinja2.StrictUndefined` (a misspelt variable is an error, never an empty string).
  The variables are listed in :data:`TEMPLATE_VARIABLES`.
* **legacy** — the original Auto Data Fountain prompts, whose ``%s`` slots are filled by position in
  exactly the order the original used; conversation and instruct types differ (see
  :data:`LEGACY_SLOTS`). ``%%`` is a literal percent sign; any other ``%`` is left alone.

In both styles the spec's ``output_format`` is appended after the prompt, separated by a blank line,
unless a Jinja prompt places ``{{ output_format }}`` itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fountain.errors import TemplateError
from fountain.spec.directions import Direction, resolve_direction
from fountain.spec.model import CONVERSATION, INSTRUCT
from fountain.spec.simple_template import render_simple, simple_template, variables_of
from fountain.types import Turn

if TYPE_CHECKING:  # pragma: no cover
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

    from fountain.spec.model import Spec

LEGACY = "legacy"
JINJA = "jinja"


#: Every variable a Jinja prompt may use.
TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {
        "diagram",
        "entities",
        "relations",
        "notes",
        "scene",
        "user_role",
        "assistant_role",
        "category",
        "direction",
        "direction_instructions",
        "conversation",
        "conversation_json",
        "persona",
        "output_format",
        "delimiter",
        "min_turns",
        "max_turns",
        "scenario",
    }
)

#: What fills each ``%s`` slot of a legacy prompt, in order, per (type, prompt key).
LEGACY_SLOTS: dict[tuple[str, str], tuple[str, ...]] = {
    (CONVERSATION, "initial_prompt"): ("diagram", "delimiter", "direction", "user_role", "assistant_role"),
    (CONVERSATION, "derivational_prompt"): (
        "diagram",
        "delimiter",
        "conversation_json",
        "direction",
        "user_role",
        "assistant_role",
    ),
    (INSTRUCT, "initial_prompt"): ("diagram", "delimiter", "user_role", "assistant_role", "direction"),
    (INSTRUCT, "derivational_prompt"): (
        "diagram",
        "delimiter",
        "conversation_json",
        "delimiter",
        "user_role",
        "assistant_role",
        "direction",
    ),
}

_LEGACY_TOKEN = re.compile(r"%[%s]")
_JINJA_MARKERS = ("{{", "{%", "{#")


# --- template style and legacy slots -------------------------------------------------------------


def legacy_slot_count(text: str) -> int:
    """Number of positional ``%s`` slots (``%%`` is an escaped percent, not a slot)."""
    return sum(1 for m in _LEGACY_TOKEN.finditer(text) if m.group() == "%s")


def has_jinja_syntax(text: str) -> bool:
    return any(marker in text for marker in _JINJA_MARKERS)


def template_style(text: str) -> str:
    """``"legacy"`` when the prompt has ``%s`` slots, else ``"jinja"`` (mixing both is checked by the spec)."""
    return LEGACY if legacy_slot_count(text) else JINJA


def fill_legacy(text: str, values: Sequence[str], *, key: str = "prompt", location: str | None = None) -> str:
    """Substitute ``values`` into the ``%s`` slots of ``text`` by position.

    Only ``%s`` and ``%%`` are special, so a stray ``%`` (``100% sure``) never breaks a prompt the way
    Python's ``%`` operator would.
    """
    slots = legacy_slot_count(text)
    if slots != len(values):
        raise TemplateError(
            f"{key} has {slots} %s slot(s) but {len(values)} value(s) are filled in",
            location=location or key,
            hint="check the slot count for the spec's type (see docs/setup-yaml.md)",
        )
    remaining = iter(values)

    def substitute(match: re.Match[str]) -> str:
        return "%" if match.group() == "%%" else str(next(remaining))

    return _LEGACY_TOKEN.sub(substitute, text)


def expected_slots(conversation_type: str, key: str) -> tuple[str, ...]:
    """What the ``%s`` slots of a legacy ``key`` prompt are filled with, in order."""
    return LEGACY_SLOTS[(conversation_type, key)]


# --- Jinja ---------------------------------------------------------------------------------------


def _plain_json(value: Any, indent: int | None = None) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; a prompt wants the plain JSON text.
    return json.dumps(value, ensure_ascii=False, indent=indent)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The shared sandboxed Jinja2 environment (StrictUndefined, no autoescape)."""
    from jinja2 import StrictUndefined

    from fountain.spec.sandbox import BoundedEnvironment

    # trim_blocks/lstrip_blocks: a line holding only {% if %} or {% endif %} leaves no blank line.
    # BoundedEnvironment: Jinja's sandbox plus limits on output, loops and time (spec/sandbox.py).
    env = BoundedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["tojson"] = _plain_json
    return env


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    # Compiled once per distinct prompt text: the engine renders the same prompt thousands of times.
    return environment().from_string(source)


@lru_cache(maxsize=256)
def template_variables_used(source: str) -> frozenset[str]:
    """Names a Jinja template reads from its context (raises jinja2.TemplateSyntaxError)."""
    simple = simple_template(source, TEMPLATE_VARIABLES)
    if simple is not None:
        return variables_of(simple)
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(environment().parse(source)))


@dataclass(frozen=True)
class TemplateIssue:
    """A problem found in a template; ``line`` is 1-based within the template text."""

    message: str
    line: int | None = None
    hint: str | None = None


def check_template(source: str, key: str) -> list[TemplateIssue]:
    """Static checks of a Jinja template: syntax, and every variable it uses exists."""
    from difflib import get_close_matches

    if simple_template(source, TEMPLATE_VARIABLES) is not None:
        return []  # only known variables, in {{ name }} and {% if name %}
    from jinja2 import TemplateSyntaxError

    try:
        used = template_variables_used(source)
    except TemplateSyntaxError as error:
        return [
            TemplateIssue(
                f"{key}: template syntax error: {error.message}",
                error.lineno,
                "Jinja syntax: {{ variable }}, {% if ... %}...{% endif %}, "
                "{% for x in list %}...{% endfor %}; write {{ '{{' }} for a literal {{",
            )
        ]
    issues = []
    for name in sorted(used - TEMPLATE_VARIABLES):
        close = get_close_matches(name, TEMPLATE_VARIABLES, n=1, cutoff=0.6)
        hint = f"did you mean {{{{ {close[0]} }}}}? " if close else ""
        hint += "variables: " + ", ".join(sorted(TEMPLATE_VARIABLES))
        issues.append(
            TemplateIssue(f"{key}: unknown template variable {{{{ {name} }}}}", _first_line_of(source, name), hint)
        )
    return issues


def _first_line_of(source: str, name: str) -> int | None:
    pattern = re.compile(r"\b" + re.escape(name) + r"\b")
    for number, line in enumerate(source.splitlines(), 1):
        if pattern.search(line) and ("{{" in line or "{%" in line):
            return number
    return None


# --- variables -----------------------------------------------------------------------------------


def _turn_dict(turn: Turn | Mapping[str, str]) -> dict[str, str]:
    if isinstance(turn, Turn):
        return {"user": turn.user, "assistant": turn.assistant}
    return {"user": str(turn["user"]), "assistant": str(turn["assistant"])}


def conversation_json(turns: Iterable[Turn | Mapping[str, str]], conversation_type: str) -> str:
    """The conversation so far as JSON, in the shape of the type's output format.

    conversation: ``{"conversations": [{"user", "assistant"}, ...]}``; instruct: the (first) pair as
    ``{"conversation": {"user", "assistant"}}``.
    """
    pairs = [_turn_dict(t) for t in turns]
    if conversation_type == INSTRUCT:
        return _plain_json({"conversation": pairs[0] if pairs else {"user": "", "assistant": ""}})
    return _plain_json({"conversations": pairs})


def _scene_variables(spec: Spec) -> dict[str, Any]:
    # The diagram-derived values are the same for every request of a run: the diagram computes
    # them once (Diagram.template_variables).
    return {"diagram": spec.diagram_text, **spec.diagram.template_variables()}


def _as_direction(direction: Direction | str) -> Direction:
    return direction if isinstance(direction, Direction) else resolve_direction(direction)


def prompt_variables(
    spec: Spec,
    direction: Direction | str,
    conversation: Sequence[Turn | Mapping[str, str]] = (),
    *,
    persona: str | None = None,
    scenario: str = "",
) -> dict[str, Any]:
    """Every template variable for one request (see :data:`TEMPLATE_VARIABLES`)."""
    direction = _as_direction(direction)
    scene = _scene_variables(spec)
    generation = spec.generation
    turns = [_turn_dict(t) for t in conversation]
    return {
        "diagram": scene["diagram"],
        "entities": list(scene["entities"]),
        "relations": [dict(r) for r in scene["relations"]],
        "notes": list(scene["notes"]),
        "scene": scene["scene"],
        "user_role": spec.user_role,
        "assistant_role": spec.assistant_role,
        "category": spec.category,
        "direction": direction.name,
        "direction_instructions": direction.instructions,
        "conversation": turns,
        "conversation_json": conversation_json(turns, generation.type),
        "persona": persona or "",
        "output_format": spec.output_format,
        "delimiter": spec.delimiter,
        "min_turns": generation.min_turns,
        "max_turns": generation.max_turns,
        "scenario": scenario or "",
    }


# --- rendering -----------------------------------------------------------------------------------


def _location(spec: Spec, key: str) -> str:
    return spec.locations.get(key) or f"{spec.path} ({key})"


def _render_jinja(spec: Spec, key: str, source: str, variables: dict[str, Any]) -> str:
    simple = simple_template(source, TEMPLATE_VARIABLES)
    if simple is not None:
        out = render_simple(simple, variables)
        if out is not None:
            return out
    from jinja2 import TemplateError as JinjaTemplateError
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        from fountain.spec.sandbox import render_bounded

        return render_bounded(_compile(source), variables)
    except UndefinedError as error:
        raise TemplateError(
            f"{key}: {error.message}",
            location=_location(spec, key),
            hint="variables: " + ", ".join(sorted(TEMPLATE_VARIABLES)),
        ) from None
    except SecurityError as error:
        raise TemplateError(
            f"{key}: not allowed in a prompt template: {error}",
            location=_location(spec, key),
            hint="templates run in a sandbox; use plain variables and filters",
        ) from None
    except JinjaTemplateError as error:
        raise TemplateError(
            f"{key}: {error.message or error}",
            location=_location(spec, key),
            hint="check the Jinja syntax of the prompt",
        ) from None
    except (
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        KeyError,
        ZeroDivisionError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as error:
        raise TemplateError(
            f"{key}: the template failed while rendering: {error}",
            location=_location(spec, key),
            hint="check the expressions inside {{ }} and {% %}",
        ) from None


def _join_format(body: str, output_format: str) -> str:
    body = body.rstrip()
    if not output_format.strip():
        return body
    return f"{body}\n\n{output_format.strip()}"


def _extras(persona: str | None, scenario: str) -> str:
    # Legacy prompts have no slot for the new inputs: add them as plain sentences after the prompt.
    lines = []
    if scenario:
        lines.append(scenario.strip())
    if persona:
        lines.append(f"The user is this person: {persona.strip()}")
    return "\n".join(lines)


def _render(
    spec: Spec,
    key: str,
    direction: Direction | str,
    conversation: Sequence[Turn | Mapping[str, str]],
    persona: str | None,
    scenario: str,
) -> str:
    source = getattr(spec, key)
    variables = prompt_variables(spec, direction, conversation, persona=persona, scenario=scenario)
    if spec.template_style == LEGACY:
        order = expected_slots(spec.generation.type, key)
        body = fill_legacy(source, [variables[name] for name in order], key=key, location=_location(spec, key))
        extras = _extras(persona, scenario)
        if extras:
            body = f"{body.rstrip()}\n\n{extras}"
        return _join_format(body, spec.output_format)
    body = _render_jinja(spec, key, source, variables)
    if "output_format" in template_variables_used(source):
        return body.rstrip()
    return _join_format(body, spec.output_format)


def render_seed_prompt(
    spec: Spec, direction: Direction | str, *, persona: str | None = None, scenario: str = ""
) -> str:
    """The prompt asking for a seed conversation in ``direction``."""
    return _render(spec, "initial_prompt", direction, (), persona, scenario)


def render_derivation_prompt(
    spec: Spec,
    direction: Direction | str,
    conversation: Sequence[Turn | Mapping[str, str]],
    *,
    persona: str | None = None,
    scenario: str = "",
) -> str:
    """The prompt asking to continue ``conversation`` (an accepted prefix) in ``direction``."""
    return _render(spec, "derivational_prompt", direction, conversation, persona, scenario)


def render_system_prompt(
    spec: Spec, direction: Direction | str, *, persona: str | None = None, scenario: str = ""
) -> str | None:
    """The spec's ``system_prompt`` rendered with the same variables (None when the spec has none)."""
    if not spec.system_prompt:
        return None
    variables = prompt_variables(spec, direction, (), persona=persona, scenario=scenario)
    return _render_jinja(spec, "system_prompt", spec.system_prompt, variables).strip()
