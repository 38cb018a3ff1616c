"""``publish(output, to)``: read an output folder, write the dataset folder, push it when ``to`` is
``hf://OWNER/NAME``. What the CLI's ``fountain publish`` calls."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fountain.publish.folder import Published, PublishOptions, check_target, write_folder
from fountain.publish.hub import Pushed, hub_repo, push_folder
from fountain.publish.source import read_source, report_figures


@dataclass
class PublishResult:
    """The folder written (a temporary one, gone, for a push) and the push, if any."""

    published: Published
    pushed: Pushed | None = None


def publish(
    output: str | Path,
    to: str,
    options: PublishOptions | None = None,
    *,
    spec: str | Path | None = None,
    report: bool = True,
    embed: bool = True,
    private: bool = False,
    endpoint: str | None = None,
    message: str | None = None,
    say: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish the output folder ``output`` to the folder ``to`` or to ``hf://OWNER/NAME``.

    ``report=False`` leaves the quality figures out of the card; ``embed=False`` computes them
    without the embedding model. ``private`` makes a new Hub repo private.
    """
    say = say or (lambda text: None)
    options = options or PublishOptions()
    repo_id = hub_repo(to)
    source = read_source(output, spec_folder=spec)
    if repo_id is None:
        check_target(Path(to), source)  # before the slow part
    if report:
        say("measuring the dataset (fountain report)")
        source.figures = report_figures(source, embed=embed)
    if repo_id is None:
        say(f"writing {to}")
        return PublishResult(write_folder(source, to, options))
    options.card.repo_id = repo_id
    with tempfile.TemporaryDirectory(prefix="fountain-publish-") as staging:
        published = write_folder(source, Path(staging) / "dataset", options)
        say(f"pushing {len(published.files)} files to hf://{repo_id}")
        pushed = push_folder(
            published.folder,
            repo_id,
            published.files,
            private=private,
            endpoint=endpoint,
            message=message or f"Publish {sum(published.counts.values())} conversations with fountain",
        )
    return PublishResult(published, pushed)
