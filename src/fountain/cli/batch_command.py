"""``fountain run --batch`` (its flags and what the run command does with them) and
``fountain cancel OUTPUT`` (cancel the batch jobs of a run).

Exit codes of ``fountain run --batch``: 0 the dataset is written; 4 jobs are submitted and not
done yet (run the same command again to collect, or add ``--batch-wait``); 1 an error.
"""

from __future__ import annotations

from typing import Any

import click

from fountain.cli.app import _console, cli

EXIT_SUBMITTED = 4  # the same value as fountain.batch.jobs.EXIT_SUBMITTED (kept import-free here)


def batch_options(command: Any) -> Any:
    """The ``--batch`` flags of ``fountain run``."""
    command = click.option(
        "--batch-poll",
        type=click.FloatRange(min=0),
        default=None,
        help="With --batch-wait: seconds between polls of the jobs (default 30).",
    )(command)
    command = click.option(
        "--batch-wait",
        is_flag=True,
        default=False,
        help="With --batch: poll until every job is done, then write the dataset.",
    )(command)
    return click.option(
        "--batch",
        is_flag=True,
        default=False,
        help="Send the requests through the provider's batch API (half price; openai, anthropic, "
        "gemini). Exits with 4 while jobs are running: run the same command again to collect.",
    )(command)


def run_batch_command(spec: Any, run_options: Any, plan: Any, options: dict[str, Any], quiet: bool) -> Any:
    """The batch path of ``fountain run``: the run's result once done, else exit code 4."""
    from fountain.batch.run import run_batch
    from fountain.errors import FountainError
    from fountain.run.manifest import output_lock
    from fountain.run.options import effective_spec, output_folder

    if plan.framework != "Gen" or plan.rater:
        raise FountainError(
            f"--batch runs the Gen framework without a rater (this run: {plan.framework}"
            + (f" with {plan.rater}" if plan.rater else "")
            + ")",
            location="--batch",
            hint="run without --batch, or with --framework Gen and no --rater",
        )
    console = _console(stderr=True)
    say = (lambda text: None) if quiet else (lambda text: console.print(text, markup=False))
    poll = options.get("batch_poll")
    folder = output_folder(effective_spec(spec, run_options), run_options)
    with output_lock(folder):
        report, result = run_batch(
            spec,
            run_options,
            wait=bool(options.get("batch_wait")),
            poll_s=30.0 if poll is None else float(poll),
            say=say,
        )
    if result is None:
        if not quiet:
            console.print(
                f"batch: {report.waiting:,} requests in jobs not done yet ({report.submitted:,} submitted now, "
                f"{report.collected:,} answers collected now). Run the same command again to collect them "
                f"(or add --batch-wait); `fountain status {folder}` shows the jobs, "
                f"`fountain cancel {folder}` cancels them.",
                markup=False,
            )
        raise SystemExit(EXIT_SUBMITTED)
    summary = report.summary
    say(
        f"batch: {len(summary['jobs'])} job(s), {summary['requests']:,} requests, {summary['failed']:,} failed for "
        f"good; ${summary['cost_usd']:.4f} at batch prices (the run's own cost counts direct calls only)"
    )
    return result


def refuse_direct_run_over_waiting_jobs(folder: Any) -> None:
    """A direct run in a folder whose batch jobs are still waiting would pay again for their
    requests: refused, with the two ways out."""
    from pathlib import Path

    if not (Path(folder) / "batches.jsonl").is_file():
        return
    from fountain.batch.jobs import Ledger
    from fountain.errors import FountainError

    waiting = Ledger(folder).in_flight()
    if waiting:
        raise FountainError(
            f"{len(waiting):,} requests of this run are in batch jobs that are not collected yet; a direct run "
            "would pay for them again",
            location=str(Path(folder) / "batches.jsonl"),
            hint="collect them with the same command plus --batch (or --batch-wait), or cancel the jobs with "
            f"`fountain cancel {folder}` first",
        )


@cli.command("cancel")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--forget-unconfirmed",
    is_flag=True,
    help="Also give up jobs whose creation was never confirmed (an Anthropic batch an earlier run "
    "was killed while creating): their requests may then be submitted again.",
)
def cancel_command(output_dir: str, forget_unconfirmed: bool) -> None:
    """Cancel the batch jobs of the run in OUTPUT_DIR that are not collected yet."""
    from fountain.batch.cancel import cancel_jobs

    for line in cancel_jobs(output_dir, forget_unconfirmed=forget_unconfirmed):
        click.echo(line)
