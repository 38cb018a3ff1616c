"""`fountain report`: metrics of an output folder, a dataset or a Janus outputs.json."""

from __future__ import annotations

import click

from fountain.cli.app import _console, cli

# --- Report -------------------------------------------------------------------------------------


@cli.command("report")
@click.argument("output", type=click.Path(path_type=str))
@click.option(
    "--real-data",
    type=click.Path(dir_okay=False, path_type=str),
    help="Real conversations (JSONL or a Janus outputs.json) to compare with.",
)
@click.option(
    "--spec",
    "spec_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="Spec folder whose diagram grounds the coverage figures (default: from the "
    "manifest, or the folder around OUTPUT).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Also write a self-contained HTML report (plots, browsable conversations) here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout (nothing else).")
@click.option(
    "--sample",
    type=click.IntRange(min=2),
    default=500,
    show_default=True,
    help="Conversations in the random sample for self-BLEU, readability and embeddings.",
)
@click.option(
    "--browse",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Conversations shown in the HTML report.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random samples.")
@click.option("--no-embed", is_flag=True, help="Skip the embedding metrics (no model is loaded).")
def report_command(
    output: str,
    real_data: str | None,
    spec_dir: str | None,
    html_path: str | None,
    as_json: bool,
    sample: int,
    browse: int,
    seed: int,
    no_embed: bool,
) -> None:
    """Measure a generated dataset: counts, structure, diversity, grounding, readability, similarity
    to real data and the privacy ledger.

    OUTPUT is an output folder of `fountain run`, a dataset.jsonl, or a Janus outputs.json.
    """
    from fountain.report import build_report

    status = _console(stderr=True)
    report = build_report(
        output,
        real_data=real_data,
        spec=spec_dir,
        sample=sample,
        seed=seed,
        embed=not no_embed,
        browse=browse,
        progress=lambda message: status.print(f"[dim]report: {message}…[/]"),
    )
    if html_path:
        from fountain.report.html import write_html

        for note in write_html(report, html_path):
            status.print(f"[yellow]note:[/] {note}")
        status.print(f"HTML report written to {html_path}")
    if as_json:
        click.echo(report.to_json())
    else:
        from fountain.report.terminal import render

        render(report, _console())
