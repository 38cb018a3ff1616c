"""The checks behind :func:`fountain.spec.load.load_spec`: schema errors turned into located problems
with hints, literal secrets, and the cross-checks (prompts, roles, settings) that need more than
the schema. Every function appends :class:`~fountain.errors.Problem` objects to lists, so that all
problems of a spec are reported together.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import Problem
from fountain.spec.model import CONVERSATION, INSTRUCT
from fountain.spec.sourcefile import KeyPath, Locator, key_path

if TYPE_CHECKING:  # pragma: no cover
    from fountain.diagram import Diagram
    from fountain.spec.model import GenerationSettings, PrivacySettings, RaterSettings


TYPES = (CONVERSATION, INSTRUCT)
DEFAULT_MAX_TURNS = 8  # GenerationSettings.max_turns (not imported: fountain.spec.load imports this module)

_SECRET_KEY = re.compile(r"(^|[_\-])(api[_\-]?key|apikey|secret|password|token|access[_\-]?token)$", re.IGNORECASE)

_IDENTIFIER_ROLE = re.compile(r"^[A-Za-z0-9_\-]+$")


def check_prompts(
    prompt_texts: dict[str, str | None],
    conv_type: str | None,
    style: str | None,
    locator: Locator,
    errors: list[Problem],
    warnings: list[Problem],
) -> None:
    from fountain.spec import prompts

    for key, text in prompt_texts.items():
        if text is None:
            continue
        if key != "system_prompt":  # the system prompt is always a Jinja template
            if style is None:
                continue  # the prompts' style is invalid: reported already
            if style == prompts.LEGACY:
                if conv_type in TYPES:
                    order = prompts.expected_slots(conv_type, key)
                    found = prompts.legacy_slot_count(text)
                    if found != len(order):
                        errors.append(
                            Problem(
                                f"{key}: has {found} %s slot(s); the {key} of the {conv_type} type has {len(order)}, "
                                f"filled in this order: {', '.join(order)}",
                                locator.at((key,)),
                                "add or remove %s slots (write %% for a literal percent sign)"
                                + (
                                    ""
                                    if conv_type == INSTRUCT or key != "derivational_prompt"
                                    else ", or set `type: instruct` if this is an instruct spec"
                                ),
                            )
                        )
                continue
        for issue in prompts.check_template(text, key):
            errors.append(Problem(issue.message, locator.in_value((key,), issue.line), issue.hint))
    if style == prompts.JINJA:
        for key, wanted, why in (
            (
                "initial_prompt",
                {"direction", "direction_instructions"},
                "every seed direction gets the same prompt; add {{ direction_instructions }}",
            ),
            (
                "derivational_prompt",
                {"conversation", "conversation_json"},
                "the model never sees the conversation it should continue; add {{ conversation_json }}",
            ),
            (
                "derivational_prompt",
                {"direction", "direction_instructions"},
                "every derivational direction gets the same prompt; add {{ direction_instructions }}",
            ),
        ):
            text = prompt_texts.get(key)
            if text is None:
                continue
            try:
                used = prompts.template_variables_used(text)
            except Exception:  # syntax errors are reported above
                continue
            if not used & wanted:
                warnings.append(Problem(f"{key}: uses none of {', '.join(sorted(wanted))}", locator.at((key,)), why))


def _role_entity_match(role: str, names: dict[str, str]) -> str | None:
    if role in names:
        return names[role]
    folded = re.sub(r"[\s_\-]+", "_", role.strip()).lower()
    for candidate, entity in names.items():
        if re.sub(r"[\s_\-]+", "_", candidate).lower() == folded:
            return entity
    return None


def check_roles(
    roles: dict[str, str | None], diagram: Diagram, locator: Locator, errors: list[Problem], warnings: list[Problem]
) -> None:
    """Roles must be entities. Exception, documented: free text (lower case or with spaces) that
    matches no entity is allowed with a warning; identifier-like names (ALL_CAPS or snake_case)
    must match an entity or an alias exactly."""
    names: dict[str, str] = {name: name for name in diagram.entities}
    try:
        for name, info in (diagram.to_dict().get("entities") or {}).items():
            alias = (info or {}).get("alias") if isinstance(info, dict) else None
            if alias:
                names.setdefault(alias, name)
    except Exception:  # the alias lookup is a convenience; the entity names are what matter
        pass
    entity_list = ", ".join(diagram.entities) or "(none)"
    for key, role in roles.items():
        if role is None:
            continue
        role = role.strip()
        if role in names:
            continue
        identifier = bool(_IDENTIFIER_ROLE.match(role)) and (role.upper() == role or "_" in role)
        match = _role_entity_match(role, names)
        close = get_close_matches(role, list(names), n=1, cutoff=0.6) or get_close_matches(
            role.upper(), [n.upper() for n in names], n=1, cutoff=0.6
        )
        if identifier:
            suggestion = match or (close[0] if close else None)
            if suggestion and suggestion.upper() != suggestion and suggestion not in names:
                suggestion = next((n for n in names if n.upper() == suggestion), suggestion)
            hint = (f"did you mean {suggestion}? " if suggestion else "") + f"entities: {entity_list}"
            errors.append(Problem(f"{key}: {role} is not an entity of the diagram", locator.at((key,)), hint))
        elif match:
            warnings.append(
                Problem(
                    f"{key}: {role!r} is taken as the entity {match}",
                    locator.at((key,)),
                    f"write {match} to match the diagram exactly",
                )
            )
        else:
            warnings.append(
                Problem(
                    f"{key}: {role!r} is not an entity of the diagram; it is used as free text",
                    locator.at((key,)),
                    f"to tie the role to the scene, use one of: {entity_list}",
                )
            )
    user, assistant = roles.get("user_role"), roles.get("assistant_role")
    if user and assistant and user.strip() == assistant.strip():
        warnings.append(
            Problem(
                f"assistant_role: the user and the assistant both play {user.strip()}",
                locator.at(("assistant_role",)),
                "give the assistant a different role",
            )
        )


def check_settings(
    spec_values: dict[str, Any], locator: Locator, folder: Path, errors: list[Problem], warnings: list[Problem]
) -> None:
    gen: GenerationSettings = spec_values["generation"]
    raters: RaterSettings = spec_values["raters"]
    privacy: PrivacySettings = spec_values["privacy"]
    if gen.min_turns > gen.max_turns:
        errors.append(
            Problem(
                f"generation.min_turns: {gen.min_turns} is more than max_turns ({gen.max_turns})",
                locator.at(("generation", "min_turns")),
                "min_turns must be at most max_turns",
            )
        )
    if gen.max_prefix_turns and gen.max_prefix_turns > gen.max_turns:
        warnings.append(
            Problem(
                f"generation.max_prefix_turns: {gen.max_prefix_turns} is more than "
                f"max_turns ({gen.max_turns}); prefixes stop at {gen.max_turns}",
                locator.at(("generation", "max_prefix_turns")),
            )
        )
    from fountain.spec.directions import operation_of

    for key in ("seed_evolving_directions", "derivational_evolving_directions"):
        seen: dict[str, str] = {}
        for index, name in enumerate(spec_values.get(key) or ()):
            canon = operation_of(name) or name.strip().lower()
            if canon in seen and seen[canon] != name:
                warnings.append(
                    Problem(
                        f"{key}[{index}]: {name!r} is the same direction as {seen[canon]!r}",
                        locator.at((key, index)),
                        "remove one of them",
                    )
                )
            seen.setdefault(canon, name)
    if raters.rater and not raters.real_data:
        warnings.append(
            Problem(
                f"raters.rater: {raters.rater} needs real data and raters.real_data is not set",
                locator.at(("raters", "rater")),
                "set raters.real_data or pass --real-data",
            )
        )
    if raters.real_data:
        target = Path(raters.real_data).expanduser()
        target = target if target.is_absolute() else folder / target
        if not target.is_file():
            warnings.append(
                Problem(
                    f"raters.real_data: {target} does not exist (yet)",
                    locator.at(("raters", "real_data")),
                    "the path is relative to the spec folder; a run with a rater needs it",
                )
            )
    if privacy.epsilon is not None and raters.rater != "PE":
        warnings.append(
            Problem(
                "privacy.epsilon: a privacy budget only applies to the PE rater",
                locator.at(("privacy", "epsilon")),
                "set raters.rater: PE",
            )
        )
    framework = spec_values["framework"]
    if framework == "Feedback" and raters.rater != "PE":
        # `fountain run` refuses this plan (frameworks.plan_framework): validate must not pass it.
        if raters.rater:
            errors.append(
                Problem(
                    "raters.rater: the Feedback framework (Private Evolution) needs the PE rater; "
                    f"{raters.rater} cannot steer it",
                    locator.at(("raters", "rater")),
                    "set raters.rater: PE, or framework: Filter to rate with RF",
                )
            )
        else:
            # A warning, not an error: `fountain run --rater PE ...` may still supply it; run refuses
            # the plan when nothing does.
            warnings.append(
                Problem(
                    "framework: Feedback (Private Evolution) needs the PE rater and none is set; "
                    "a run without --rater PE will be refused",
                    locator.at(("framework",)),
                    "set raters.rater: PE with raters.real_data and privacy.epsilon, pass "
                    "--rater PE --real-data FILE --epsilon E, or use framework: Gen",
                )
            )
    elif framework == "Filter" and not raters.rater:
        warnings.append(
            Problem(
                "framework: Filter rates samples but no rater is set: its rounds only deduplicate",
                locator.at(("framework",)),
                "set raters.rater (PE or RF) or pass --rater",
            )
        )


def check_turns(data: dict[str, Any], conv_type: str | None, locator: Locator, errors: list[Problem]) -> None:
    # Checked on the raw values so that it is reported together with every other problem.
    gen = data.get("generation")
    gen = gen if isinstance(gen, dict) else {}
    low, high = gen.get("min_turns", 1), gen.get("max_turns", DEFAULT_MAX_TURNS)
    if conv_type == INSTRUCT or not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        return
    if 1 <= high < low:  # a value below 1 is reported by the schema
        errors.append(
            Problem(
                f"generation.min_turns: {low} is more than max_turns ({high})",
                locator.at(("generation", "min_turns")),
                "min_turns must be at most max_turns",
            )
        )


def strip_secrets(
    node: Any, path: KeyPath, locator: Locator, errors: list[Problem], seen: set[int] | None = None
) -> None:
    """Report and drop keys that hold a literal API key (the value is never echoed)."""
    seen = set() if seen is None else seen
    if isinstance(node, (dict, list)):
        if id(node) in seen:
            return  # YAML aliases share objects: visit each once
        seen.add(id(node))
    if isinstance(node, dict):
        for key in list(node):
            if isinstance(key, str) and _SECRET_KEY.search(key) and not key.endswith("_env"):
                errors.append(
                    Problem(
                        f"{key_path(path + (key,))}: an API key must not be written in setup.yaml",
                        locator.at(path + (key,), key=True),
                        "keep it in an environment variable (export OPENAI_API_KEY=...) and name the "
                        "variable with `model.api_key_env: OPENAI_API_KEY`; then remove this line (and "
                        "rotate the key if the file was shared or committed)",
                    )
                )
                del node[key]
            else:
                strip_secrets(node[key], path + (key,), locator, errors, seen)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            strip_secrets(item, path + (index,), locator, errors, seen)


def dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for problem in problems:
        marker = (problem.message, problem.location)
        if marker not in seen:
            seen.add(marker)
            out.append(problem)
    return out
