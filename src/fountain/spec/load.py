"""The spec: setup.yaml (+ the diagram) read, validated and turned into typed objects.

Public entry points: :func:`load_spec` (read, validate, cross-check, build a :class:`Spec`) and
:func:`check_spec` (the cross-checks again, on a built spec). Specs of the original Auto Data
Fountain (Janus) load unmodified: positional ``%s`` prompts, no ``type`` key, the diagram in
``diagram.mermaid``.

Every problem found is reported at once, in one :class:`~fountain.errors.SpecError`, each with the
``file:line:col`` of the YAML node, the key path (``generation.max_turns``) and a hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import DiagramError, Problem, SpecError
from fountain.spec import checks, schema_errors
from fountain.spec.model import (
    CONVERSATION,
    DEFAULT_DELIMITER,
    DEFAULT_OUTPUT_FORMATS,
    INSTRUCT,
    SETUP_FILE,
    TYPES,
    DedupSettings,
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    PrivacySettings,
    RaterSettings,
    Spec,
)
from fountain.spec.sourcefile import FileProblem, Locator, compose_yaml, read_text_file

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed import DataclassInstance

    from fountain.diagram import Diagram
from fountain.spec.files import _Context, _load_personas, _parse_diagram, _resolve_diagram, _text, _text_keys

# ==================================================================================================
# Loading
# ==================================================================================================


def _folder_checks(folder: Path) -> Path:
    """The setup.yaml path, or raise the one clear error for a bad folder argument."""
    if not folder.exists():
        raise SpecError(
            f"spec folder not found: {folder}",
            location=str(folder),
            hint=f"check the path, or create a new spec with: fountain init {folder}",
        )
    if not folder.is_dir():
        hint = "pass the folder that contains setup.yaml"
        if folder.name in (SETUP_FILE, "setup.yml"):
            hint += f": --target-folder {folder.parent}"
        raise SpecError(f"{folder} is a file, not a spec folder", location=str(folder), hint=hint)
    path = folder / SETUP_FILE
    if path.is_dir():
        raise SpecError(
            f"{path} is a directory, not a file",
            location=str(path),
            hint="setup.yaml must be a YAML file; remove or rename the directory",
        )
    if not path.exists():
        others = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
        if (folder / "setup.yml").exists():
            hint = "rename setup.yml to setup.yaml"
        elif others:
            hint = f"the spec must be named setup.yaml (found {', '.join(others)})"
        else:
            hint = f"create one with: fountain init {folder}"
        raise SpecError(f"no setup.yaml in {folder}", location=str(folder), hint=hint)
    return path


def _block(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _pick(block: dict[str, Any], cls: type[DataclassInstance], **converters: Callable[[Any], Any]) -> Any:
    # Keys absent from the YAML keep the dataclass defaults; present keys (even null) override.
    kwargs = {}
    for name in cls.__dataclass_fields__:
        if name in block:
            value = block[name]
            convert = converters.get(name)
            kwargs[name] = convert(value) if (convert and value is not None) else value
    return cls(**kwargs)


def _float(value: Any) -> float:
    return float(value)


def _int(value: Any) -> int:
    return int(value)


def _prompt_styles(ctx: _Context) -> str | None:
    """Template style of the spec; reports prompts that mix styles."""
    from fountain.spec import prompts

    styles = {}
    for key in ("initial_prompt", "derivational_prompt"):
        text = _text(ctx.data, key)
        if text is None:
            continue
        style = prompts.template_style(text)
        if style == prompts.LEGACY and prompts.has_jinja_syntax(text):
            ctx.errors.append(
                Problem(
                    f"{key}: mixes positional %s slots with Jinja {{{{ }}}} syntax",
                    ctx.locator.at((key,)),
                    "use one style: %s slots (the original format) or named "
                    "{{ variables }}; write %% for a literal percent sign",
                )
            )
            return None
        styles[key] = style
    if len(set(styles.values())) > 1:
        legacy = [k for k, s in styles.items() if s == prompts.LEGACY][0]
        other = [k for k, s in styles.items() if s != prompts.LEGACY][0]
        ctx.errors.append(
            Problem(
                f"{other}: uses Jinja variables while {legacy} uses positional %s slots",
                ctx.locator.at((other,)),
                "both prompts must use the same style; rewrite one of them",
            )
        )
        return None
    return next(iter(styles.values()), None)


def _resolve_type(ctx: _Context, style: str | None, type_override: str | None) -> tuple[str, str] | None:
    from fountain.spec import prompts

    declared = ctx.data.get("type") if ctx.data.get("type") in TYPES else None
    if type_override is not None:
        if type_override not in TYPES:
            raise SpecError(
                f"unknown type {type_override!r}", location="--type", hint="use --type conversation or --type instruct"
            )
        if declared and declared != type_override:
            ctx.warnings.append(
                Problem(
                    f"type: setup.yaml says {declared}, --type says {type_override}; using {type_override}",
                    ctx.locator.at(("type",)),
                )
            )
        return type_override, "override"
    if declared:
        return declared, "key"
    if "type" in ctx.data:
        return None  # invalid value, already reported by the schema
    if style != prompts.LEGACY:
        return CONVERSATION, "default"
    derivational = _text(ctx.data, "derivational_prompt") or ""
    slots = prompts.legacy_slot_count(derivational)
    if slots == 7:
        return INSTRUCT, "slots"
    if slots == 6:
        return CONVERSATION, "slots"
    ctx.errors.append(
        Problem(
            f"derivational_prompt: cannot tell the type from its {slots} %s slot(s) (6 = conversation, 7 = instruct)",
            ctx.locator.at(("derivational_prompt",)),
            "set `type: conversation` or `type: instruct` in setup.yaml (or pass --type)",
        )
    )
    return None


# --- cross-checks (shared by load_spec and check_spec) --------------------------------------------


def _build(
    ctx: _Context,
    conv_type: str,
    type_source: str,
    style: str,
    diagram: Diagram,
    diagram_text: str,
    diagram_path: Path | None,
    personas: tuple[str, ...],
    personas_path: Path | None,
) -> Spec:
    data = ctx.data
    gen_block = _block(data, "generation")
    generation = _pick(
        gen_block,
        GenerationSettings,
        seeds_per_direction=_int,
        derivations_per_direction=_int,
        min_turns=_int,
        max_turns=_int,
        max_prefix_turns=_int,
        target=_int,
        max_retries=_int,
    )
    if conv_type == INSTRUCT:
        for key in ("min_turns", "max_turns", "max_prefix_turns"):
            if gen_block.get(key) not in (None, 1):
                ctx.warnings.append(
                    Problem(
                        f"generation.{key}: instruct specs make single user/assistant pairs; the value is ignored",
                        ctx.locator.at(("generation", key)),
                    )
                )
        generation = GenerationSettings(
            **{**asdict(generation), "min_turns": 1, "max_turns": 1, "max_prefix_turns": None}
        )
    generation = GenerationSettings(**{**asdict(generation), "type": conv_type})
    number = dict(
        temperature=_float,
        top_p=_float,
        timeout_s=_float,
        rpm=_float,
        tpm=_float,
        max_tokens=_int,
        concurrency=_int,
        base_urls=lambda urls: tuple(str(u).strip() for u in urls),
    )
    model = _pick(_block(data, "model"), ModelSettings, **number)
    output = _pick(_block(data, "output"), OutputSettings)
    raters_block = _block(data, "raters")
    dedup = _pick(_block(raters_block, "dedup"), DedupSettings, minhash_threshold=_float, embedding_threshold=_float)
    raters = _pick(
        {k: v for k, v in raters_block.items() if k != "dedup"},
        RaterSettings,
        k=_int,
        threshold=_float,
        rf_percentile=_float,
    )
    raters = RaterSettings(**{**{f: getattr(raters, f) for f in RaterSettings.__dataclass_fields__}, "dedup": dedup})
    privacy = _pick(_block(data, "privacy"), PrivacySettings, epsilon=_float, delta=_float, iterations=_int)
    output_format = data.get("output_format")
    if output_format is None:
        output_format = DEFAULT_OUTPUT_FORMATS[conv_type]
    return Spec(
        folder=ctx.folder,
        path=ctx.path,
        category=data["category"].strip(),
        user_role=data["user_role"].strip(),
        assistant_role=data["assistant_role"].strip(),
        initial_prompt=data["initial_prompt"],
        derivational_prompt=data["derivational_prompt"],
        output_format=output_format,
        delimiter=data.get("delimiter", DEFAULT_DELIMITER),
        seed_directions=tuple(d.strip() for d in data["seed_evolving_directions"]),
        derivational_directions=tuple(d.strip() for d in data["derivational_evolving_directions"]),
        diagram_text=diagram_text,
        diagram=diagram,
        diagram_path=diagram_path,
        template_style=style,
        system_prompt=data.get("system_prompt"),
        generation=generation,
        model=model,
        personas=personas,
        output=output,
        raters=raters,
        privacy=privacy,
        framework=data.get("framework", "Gen"),
        data=data,
        type_source=type_source,
        personas_path=personas_path,
        locations=ctx.locator.as_dict(),
        locator=ctx.locator,
    )


def load_spec(folder: str | Path, *, type_override: str | None = None, allow_paths: Sequence[str | Path] = ()) -> Spec:
    """Read and validate ``<folder>/setup.yaml`` and its diagram; raise SpecError/DiagramError.

    ``type_override`` (the CLI's ``--type``) wins over the ``type`` key. Files the spec names must
    lie inside the spec folder or one of ``allow_paths`` (the CLI's ``--allow-path``). Cross-checks run too:
    errors are raised together with every other problem; warnings land in ``Spec.warnings``.
    """
    folder = Path(folder)
    path = _folder_checks(folder)
    try:
        text = read_text_file(path, "setup.yaml")
    except FileProblem as problem:
        p = problem.problem
        raise SpecError(p.message, location=p.location, hint=p.hint) from None
    if not text.strip():
        raise SpecError(
            "setup.yaml is empty",
            location=str(path),
            hint=f"write a spec (see docs/setup-yaml.md), or scaffold one with: fountain init {folder}",
        )
    locator = Locator(str(path), text)
    structural: list[Problem] = []
    data = compose_yaml(text, locator, structural)
    if data is None:
        raise SpecError(
            "setup.yaml is empty (it holds only comments)",
            location=str(path),
            hint="uncomment or add the spec's keys (see docs/setup-yaml.md)",
        )
    if not isinstance(data, dict):
        raise SpecError(
            f"the top level of setup.yaml must be a mapping of keys, got {schema_errors.yaml_type(data)}",
            location=locator.at(()),
            hint="write `key: value` lines at the top level, e.g. `category: marriage counsel`",
        )
    ctx = _Context(folder, path, locator, data, errors=structural, allowed=tuple(Path(p) for p in allow_paths))

    # Literal secrets first: they are removed before anything else reads (or echoes) them.
    checks.strip_secrets(data, (), locator, ctx.errors)
    # Non-string keys (`1:`, `null:`) and lone surrogates are reported by compose_yaml; dropped
    # here so that no later check meets a key that is not text.
    data = ctx.data = _text_keys(data)
    ctx.errors.extend(schema_errors.schema_problems(data, locator))

    style = _prompt_styles(ctx)
    resolved = _resolve_type(ctx, style, type_override)
    conv_type, type_source = resolved if resolved else (None, "default")
    checks.check_prompts(
        {k: _text(data, k) for k in ("initial_prompt", "derivational_prompt", "system_prompt")},
        conv_type,
        style,
        locator,
        ctx.errors,
        ctx.warnings,
    )
    personas, personas_path = _load_personas(ctx)
    real_data = _block(data, "raters").get("real_data")
    if isinstance(real_data, str) and real_data.strip():
        ctx.confined(real_data, ("raters", "real_data"))
    source = _resolve_diagram(ctx)

    diagram = diagram_text = None
    diagram_error: DiagramError | None = None
    if source is not None:
        text_, diagram_path, where, first_line = source
        try:
            diagram, diagram_text = _parse_diagram(text_, where, first_line, diagram_path is None)
        except DiagramError as error:
            diagram_error = error
    else:
        diagram_path = None
    if diagram is not None:
        checks.check_roles(
            {k: _text(data, k) for k in ("user_role", "assistant_role")}, diagram, locator, ctx.errors, ctx.warnings
        )
    checks.check_turns(data, conv_type, locator, ctx.errors)

    if diagram_error is not None:
        if not ctx.errors:
            raise diagram_error
        ctx.errors.append(Problem(diagram_error.message, diagram_error.location, diagram_error.hint))
    if ctx.errors:
        _raise(ctx.errors, str(path))
    assert conv_type is not None and style is not None and diagram is not None and diagram_text is not None
    spec = _build(ctx, conv_type, type_source, style, diagram, diagram_text, diagram_path, personas, personas_path)
    warnings = checks.dedupe(ctx.warnings + check_spec(spec))
    return replace(spec, warnings=tuple(warnings))


def _location_sort_key(problem: Problem, first_file: str | None) -> tuple[int, str, int, int]:
    # setup.yaml's problems first, in file order; then other files (diagram, personas) in order.
    match = re.match(r"^(.*):(\d+):(\d+)$", problem.location or "")
    if not match:
        return (2, "", 0, 0)
    file = match.group(1)
    return (0 if file == first_file else 1, file, int(match.group(2)), int(match.group(3)))


def _raise(problems: list[Problem], setup_file: str | None = None) -> None:
    problems = sorted(checks.dedupe(problems), key=lambda p: _location_sort_key(p, setup_file))
    first = problems[0]
    raise SpecError(first.message, location=first.location, hint=first.hint, problems=problems)


def check_spec(spec: Spec) -> list[Problem]:
    """Cross-check a built spec: roles against the diagram, template variables, slot counts,
    settings. Returns the warnings; raises SpecError with every error."""
    locator = spec.locator if spec.locator is not None else Locator(str(spec.path), "")
    errors: list[Problem] = []
    warnings: list[Problem] = []
    checks.check_prompts(
        {
            "initial_prompt": spec.initial_prompt,
            "derivational_prompt": spec.derivational_prompt,
            "system_prompt": spec.system_prompt,
        },
        spec.generation.type,
        spec.template_style,
        locator,
        errors,
        warnings,
    )
    checks.check_roles(
        {"user_role": spec.user_role, "assistant_role": spec.assistant_role}, spec.diagram, locator, errors, warnings
    )
    checks.check_settings(
        {
            "generation": spec.generation,
            "raters": spec.raters,
            "privacy": spec.privacy,
            "framework": spec.framework,
            "seed_evolving_directions": spec.seed_directions,
            "derivational_evolving_directions": spec.derivational_directions,
        },
        locator,
        spec.folder,
        errors,
        warnings,
    )
    for key, directions in (
        ("seed_evolving_directions", spec.seed_directions),
        ("derivational_evolving_directions", spec.derivational_directions),
    ):
        if not directions or not all(d.strip() for d in directions):
            errors.append(Problem(f"{key}: no directions", locator.at((key,)), "list at least one direction"))
    if errors:
        _raise(errors, str(spec.path))
    # A trial render catches what static checks cannot (e.g. {{ entities[9] }}, a bad filter).
    from fountain.spec import prompts
    from fountain.types import Turn

    example = [Turn("(user)", "(assistant)")]
    render: Callable[[], object]
    for render in (
        lambda: prompts.render_seed_prompt(spec, spec.seed_directions[0]),
        lambda: prompts.render_derivation_prompt(spec, spec.derivational_directions[0], example),
        lambda: prompts.render_system_prompt(spec, spec.seed_directions[0]),
    ):
        try:
            render()
        except Exception as error:  # TemplateError from prompts; anything else is reported too
            message = getattr(error, "message", str(error))
            errors.append(Problem(message, getattr(error, "location", None), getattr(error, "hint", None)))
    if errors:
        _raise(errors, str(spec.path))
    return checks.dedupe(warnings)
