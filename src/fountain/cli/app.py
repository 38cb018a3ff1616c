"""The ``fountain`` command group, its console and error printing; the commands live beside it.

Click commands only: the work lives in the library modules.

Heavy modules (torch, llama.cpp, SDKs) are imported inside the commands that need them, so
``fountain --help`` and ``fountain validate`` stay fast.
"""

from __future__ import annotations

import sys

import click

from fountain import __version__
from fountain.errors import FountainError
from fountain.safety import safe_text


def _console(stderr: bool = False, *, whole_lines: bool = False):
    """A rich console. ``whole_lines``: when the output is not a terminal (a pipe, a file), lines
    are never cut at rich's default of 80 columns (a tree's labels would lose their ends)."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if whole_lines and not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=100_000)
    return console


ALLOW_PATH = click.option(
    "--allow-path",
    "allow_path",
    multiple=True,
    type=click.Path(file_okay=False, path_type=str),
    help="A folder outside the spec folder whose files the spec may read (personas_file, "
    "er_diagram_path, raters.real_data); repeatable. Without it a spec reads only its own folder.",
)


def shown(text: str) -> str:
    """``text`` (which may come from a server, a spec or a manifest) ready for a rich console:
    secrets redacted, control characters escaped, markup escaped."""
    from rich.markup import escape

    return escape(safe_text(str(text)))


def print_error(error: FountainError) -> None:
    """One clear message (location, message, hint) on stderr, no traceback."""
    from rich.markup import escape

    console = _console(stderr=True)

    # The message may hold text from a server or a spec: secrets redacted, control characters escaped.
    console.print(f"[bold red]error:[/] {escape(safe_text(str(error)))}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fountain")
def cli() -> None:
    """Generate conversational fine-tuning data from a spec folder (setup.yaml + diagram.mermaid)."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: maps FountainError to exit code 1, usage errors to 2."""
    try:
        cli.main(args=argv, prog_name="fountain", standalone_mode=False)
    except FountainError as error:
        print_error(error)
        sys.exit(error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C (and SIGTERM, see _with_sigterm_as_interrupt) into Abort.
        _console(stderr=True).print(
            "interrupted: everything written so far is kept; run the same command again to resume"
        )
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(0)
