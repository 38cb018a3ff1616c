"""`fountain publish`: an output folder as a dataset folder or a Hugging Face Hub dataset."""

from __future__ import annotations

import json

import click

from fountain.cli.app import _console, cli


@cli.command("publish")
@click.argument("output", type=click.Path(path_type=str))
@click.option(
    "--to",
    "to",
    required=True,
    help="A folder to write, or hf://OWNER/NAME to push to the Hugging Face Hub (token from HF_TOKEN).",
)
@click.option(
    "--test-size",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    help="Share of the conversations in the test split (below 1), or their number; 0: no test split.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--spec",
    "spec_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="Spec folder shown on the card (default: from the manifest, or the folder around OUTPUT).",
)
@click.option("--license", "license_", default="other", show_default=True, help="License id for the card.")
@click.option("--language", multiple=True, help="Language code(s) of the data (default: en).")
@click.option("--name", "pretty_name", help="Title of the dataset (default: the spec's category).")
@click.option("--tag", "tags", multiple=True, help="Extra tag for the card (repeatable).")
@click.option(
    "--prefix-loss",
    type=click.Choice(["keep", "mask"]),
    help="mask: weight 0 on the assistant turns a derivation repeats from its seed; keep: no "
    "weights (default: as the run exported them).",
)
@click.option("--private", is_flag=True, help="Create the Hub repository private.")
@click.option("--message", help="Commit message of the push.")
@click.option("--no-report", is_flag=True, help="Leave the quality figures off the card.")
@click.option("--no-embed", is_flag=True, help="Quality figures without the embedding model.")
@click.option("--json", "as_json", is_flag=True, help="Print what was published as JSON on stdout.")
def publish_command(
    output: str,
    to: str,
    test_size: float,
    seed: int,
    spec_dir: str | None,
    license_: str,
    language: tuple[str, ...],
    pretty_name: str | None,
    tags: tuple[str, ...],
    prefix_loss: str | None,
    private: bool,
    message: str | None,
    no_report: bool,
    no_embed: bool,
    as_json: bool,
) -> None:
    """Publish an output folder: train/test splits without leaks, a dataset card that says where
    the data came from, LLaMA-Factory and Axolotl configs; to a folder or the Hub.

    OUTPUT is an output folder of `fountain run`. `datasets.load_dataset(FOLDER)` loads the result.
    """
    from fountain.publish.card import CardOptions
    from fountain.publish.folder import PublishOptions
    from fountain.publish.publisher import publish

    status = _console(stderr=True)
    card = CardOptions(license=license_, language=language or ("en",), pretty_name=pretty_name, tags=tags)
    options = PublishOptions(test_size=test_size, seed=seed, prefix_loss=prefix_loss, card=card)
    result = publish(
        output,
        to,
        options,
        spec=spec_dir,
        report=not no_report,
        embed=not no_embed,
        private=private,
        message=message,
        say=lambda text: status.print(f"[dim]publish: {text}…[/]"),
    )
    published, pushed = result.published, result.pushed
    summary = {
        "to": pushed.url if pushed else str(published.folder),
        "splits": published.counts,
        "dropped_near_duplicates": published.split.get("dropped_near_duplicates", 0),
        "files": published.files,
    }
    if pushed is not None:
        summary.update(repo_id=pushed.repo_id, commit=pushed.commit, private=pushed.private)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    console = _console()
    splits = ", ".join(f"{n} {name}" for name, n in published.counts.items())
    console.print(f"published {splits} to {summary['to']}")
    if summary["dropped_near_duplicates"]:
        console.print(f"  {summary['dropped_near_duplicates']} near-copies of test conversations left out of train")
    if pushed is not None:
        console.print(f"  commit {pushed.commit}")
    else:
        console.print(f'  load it with: datasets.load_dataset("{published.folder}")')
