"""`fountain validate`, `fountain diagram`, `fountain init`: the spec folder, checked and drawn."""

from __future__ import annotations

import click

from fountain.cli.app import ALLOW_PATH, _console, cli

# --- Foundation: validate / diagram / init --------------------------------------------------


@cli.command("validate")
@click.option(
    "--target-folder",
    "-t",
    "target_folder",
    required=True,
    type=click.Path(path_type=str),
    help="The spec folder (setup.yaml + diagram.mermaid).",
)
@click.option(
    "--type",
    "conversation_type",
    type=click.Choice(["conversation", "instruct"]),
    help="Conversation type; wins over the spec's `type` key (legacy specs: detected from the prompts).",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit code 1).")
@ALLOW_PATH
def validate_command(
    target_folder: str, conversation_type: str | None, strict: bool, allow_path: tuple[str, ...] = ()
) -> None:
    """Check a spec folder (setup.yaml, diagram, prompts, roles) without calling a model."""
    from fountain.errors import SpecError
    from fountain.spec.load import load_spec

    spec = load_spec(target_folder, type_override=conversation_type, allow_paths=allow_path)
    if strict and spec.warnings:
        # No "✓ valid" summary first: with --strict a warning makes the spec invalid.
        _print_warnings(spec.warnings)
        raise SpecError(
            f"{len(spec.warnings)} warning(s) with --strict",
            location=str(spec.path),
            hint="fix the warnings above, or run without --strict",
        )
    _print_spec_summary(spec)
    _print_warnings(spec.warnings)


def _print_warnings(warnings) -> None:
    from rich.markup import escape

    console = _console(stderr=True)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(str(warning))}")


def _print_spec_summary(spec) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    diagram = spec.diagram
    counts = diagram.summary()
    gen = spec.generation
    source = {
        "key": "from the type key",
        "override": "from --type",
        "slots": "detected from the %s slots",
        "default": "default",
    }.get(spec.type_source, spec.type_source)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")

    def row(label: str, value: str) -> None:
        table.add_row(label, escape(value))

    if spec.diagram_path is None:
        where = "inline (er_diagram)"
    elif spec.diagram_path.parent == spec.folder:
        where = spec.diagram_path.name
    else:
        where = str(spec.diagram_path)
    row("category", spec.category)
    row("type", f"{gen.type} ({source})")
    row(
        "templates",
        spec.template_style + (" (positional %s slots)" if spec.template_style == "legacy" else " ({{ variables }})"),
    )
    row(
        "diagram",
        f"{where}: {counts['entities']} entities, {counts['relationships']} relations, {counts['notes']} notes",
    )
    row("entities", ", ".join(diagram.entities))
    for index, rel in enumerate(diagram.relationships):
        row("relations" if index == 0 else "", f"{rel.left} → {rel.right}: {rel.label}")
    row("roles", f"user {spec.user_role}, assistant {spec.assistant_role}")
    row("seed directions", ", ".join(spec.seed_directions))
    row("derivational", ", ".join(spec.derivational_directions))
    if spec.personas:
        origin = spec.personas_path.name if spec.personas_path else "inline"
        row("personas", f"{len(spec.personas)} ({origin})")
    model = spec.model
    row("model", " ".join(v for v in (model.provider or "local (default)", model.name or "") if v))
    seeds = spec.planned_seed_calls()
    per_seed = f"{len(spec.seed_directions)} direction(s) × {gen.seeds_per_direction}"
    if spec.personas:
        per_seed += f" × {len(spec.personas)} persona(s)"
    row("seed calls", f"{seeds} ({per_seed})")
    row(
        "derivation calls",
        f"at most {spec.max_derivation_calls()} ({seeds} seed(s) × {spec.prefix_limit} "
        f"prefix(es) × {len(spec.derivational_directions)} direction(s) × "
        f"{gen.derivations_per_direction})",
    )
    if gen.target:
        row("target", f"stop at {gen.target} accepted conversations")
    console.print(f"[green]✓[/] {escape(str(spec.path))} is valid")
    console.print(table)


def _non_empty_path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must not be empty (give the folder to create, e.g. my_spec)", ctx=ctx, param=param)
    return value


@cli.command("init")
@click.argument("folder", type=click.Path(path_type=str), callback=_non_empty_path)
def init_command(folder: str) -> None:
    """Scaffold a new spec folder: a commented setup.yaml, diagram.mermaid and .gitignore."""
    from rich.markup import escape

    from fountain.spec.scaffold import init_spec

    result = init_spec(folder)
    console = _console()
    for path in result.written:
        console.print(f"[green]wrote[/] {escape(str(path))}")
    for path in result.kept:
        console.print(f"kept  {escape(str(path))} (already there)")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"next: fountain validate --target-folder {escape(folder)}")


@cli.command("diagram")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print Diagram.to_dict() as JSON on stdout.")
def diagram_command(path: str, as_json: bool) -> None:
    """Parse a mermaid erDiagram and show it: PATH is a .mermaid file or a spec folder."""
    from fountain.diagram import load_diagram

    diagram = load_diagram(path)
    if as_json:
        import json

        click.echo(json.dumps(diagram.to_dict(), indent=2, ensure_ascii=False))
        return
    from fountain.diagram import rich_tree

    _console(whole_lines=True).print(rich_tree(diagram))
