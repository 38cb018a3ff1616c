"""`fountain render`: the exact messages of a seed request and a derivation request, no model call."""

from __future__ import annotations

import click

from fountain.cli.app import ALLOW_PATH, cli
from fountain.cli.run_commands import _MODE, _TARGET, _TYPE, PROVIDER_CHOICES
from fountain.errors import FountainError


@cli.command("render")
@_TARGET
@_TYPE
@click.option("--direction", help="Direction to render (default: the first of the spec).")
@_MODE
@click.option(
    "--provider", type=PROVIDER_CHOICES, help="Provider whose automatic mode to show (default: the spec's, else local)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the requests as JSON (messages, schema, sampling).")
@ALLOW_PATH
def render_command(
    target_folder: str,
    conversation_type: str | None,
    direction: str | None,
    mode: str | None,
    provider: str | None,
    as_json: bool,
    allow_path: tuple[str, ...] = (),
) -> None:
    """Print the exact messages a run would send first, without calling a model.

    Shows a seed request and a derivation request built from a placeholder conversation.
    """
    import json

    from fountain.generation.preview import preview_requests
    from fountain.generation.requests import resolve_mode
    from fountain.providers import check_provider_name
    from fountain.spec.load import load_spec

    spec = load_spec(target_folder, type_override=conversation_type, allow_paths=allow_path)
    if direction is not None and direction not in (*spec.seed_directions, *spec.derivational_directions):
        raise FountainError(
            f"the spec has no direction {direction!r}",
            location="--direction",
            hint="directions: " + ", ".join(dict.fromkeys((*spec.seed_directions, *spec.derivational_directions))),
        )
    provider_name = check_provider_name(provider or spec.model.provider or "local", location="--provider")
    resolved = resolve_mode(spec, provider_name, mode)
    requests = preview_requests(spec, mode=resolved, direction=direction)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "title": title,
                        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
                        "schema": request.schema,
                        "sampling": request.sampling.to_dict(),
                    }
                    for title, request in requests
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    click.echo(f"# mode: {resolved} ({spec.generation.type})")
    for title, request in requests:
        click.echo(f"\n==================== {title} ====================")
        for message in request.messages:
            click.echo(f"--- {message.role} ---")
            click.echo(message.content.rstrip())
        if request.schema is not None:
            click.echo(
                "--- (the answer is constrained to the conversation JSON schema: fountain render --json shows it) ---"
            )
