"""`fountain status`: what a run has done and has left, its spec version, usage, cost and batch jobs."""

from __future__ import annotations

import os

import click

from fountain.cli.app import _console, cli


@cli.command("status")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--spec",
    "spec_folder",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Compare against this spec folder (default: the one the run used, or the output "
    "folder's parent when that one has moved).",
)
def status_command(output_dir: str, as_json: bool, spec_folder: str | None) -> None:
    """What the run in OUTPUT_DIR has done and has left: spec version, counts, usage and cost."""
    import json

    from fountain.batch.status import add_batch_status
    from fountain.run.status import collect_status

    status = add_batch_status(output_dir, lambda: collect_status(output_dir, spec_folder=spec_folder))
    if as_json:
        click.echo(json.dumps(status, indent=2, ensure_ascii=False))
        return
    _print_status(status)


def _print_status(status: dict) -> None:
    from rich.table import Table

    from fountain.batch.status import print_batch_status
    from fountain.cli.app import shown as escape  # markup and control characters escaped

    console = _console()
    if "status" not in status:  # batch jobs submitted, the run not written yet
        console.print(f"[bold]{escape(status['output'])}[/]  [yellow]batch jobs submitted[/]")
        print_batch_status(console, status.get("batch"))
        return
    state = status["status"]
    colour = {"completed": "green", "running": "yellow", "stopped": "yellow", "failed": "red"}.get(state, "white")
    label = "running (or interrupted)" if state == "running" else state
    console.print(
        f"[bold]{escape(status['output'])}[/]  [{colour}]{label}[/]"
        + (f" — {escape(str(status['stop_reason']))}" if status.get("stop_reason") else "")
    )

    spec = status["spec"]
    git = spec.get("git")
    git_text = (
        "not in git"
        if not git
        else f"commit {git['commit'][:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")
    )
    changed = spec.get("changed_since")
    if changed == []:
        changed_text = "unchanged since"
    elif isinstance(changed, list):
        changed_text = f"[yellow]changed since: {escape(', '.join(changed))}[/]"
    else:
        changed_text = escape(changed) if changed else ""
    console.print(
        f"spec      {escape(spec.get('folder') or '?')}  fingerprint {spec['fingerprint'][:12]}, "
        f"{git_text}" + (f"; {changed_text}" if changed_text else "")
    )
    compared = spec.get("compared_with")
    if compared and os.path.realpath(compared) != os.path.realpath(spec.get("folder") or ""):
        console.print(f"          (compared with {escape(compared)})")
    provider = status.get("provider") or {}
    who = " ".join(str(v) for v in (provider.get("provider"), provider.get("model")) if v)
    if provider.get("base_url"):
        who += f" at {provider['base_url']}"
    console.print(f"provider  {escape(who or '?')}")

    table = Table(show_edge=False, pad_edge=False)
    for column in ("", "planned", "accepted", "rejected", "left"):
        table.add_column(column, justify="left" if not column else "right")
    seeds, derivations = status["seeds"], status["derivations"]
    table.add_row(
        "seeds", f"{seeds['requested']:,}", f"{seeds['accepted']:,}", f"{seeds['rejected']:,}", f"{seeds['left']:,}"
    )
    table.add_row(
        "derivations",
        f"{derivations['planned']:,}",
        f"{derivations['accepted']:,}",
        f"{derivations['rejected']:,}",
        f"{derivations['left']:,}",
    )
    console.print(table)
    if seeds["left"]:
        console.print("[dim]derivations are planned as seeds are accepted: the seeds left add more[/]")
    if status["rejected_by_reason"]:
        console.print(
            "rejected  " + ", ".join(f"{escape(reason)} {n:,}" for reason, n in status["rejected_by_reason"].items())
        )
    if status.get("dataset_records") is not None:
        console.print(
            f"dataset   {status['dataset_records']:,} records in {escape(status.get('dataset_file', 'dataset.jsonl'))}"
        )
    usage = status["usage"]
    cost = f"${status['cost_usd']:.4f}" + ("" if status["cost_complete"] else " (some models unpriced)")
    console.print(
        f"usage     {usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} "
        f"completion tokens; cost {cost}; {status['elapsed_s']:.0f} s over "
        f"{status['sessions']} session(s)"
    )
    _print_judge_and_servers(console, status)
    for problem in status.get("problems", ()):
        console.print(f"[yellow]warning:[/] {escape(problem)}")
    if status.get("usage_source") == "journals":
        console.print("[dim]usage and cost counted from the journals (the session did not end cleanly)[/]")
    for name in status["torn_lines"]:
        console.print(
            f"[yellow]note:[/] {escape(name)} ends with a torn line from an interrupted write; the next run drops it"
        )
    print_batch_status(console, status.get("batch"))
    if state != "completed":
        console.print("[dim]run the same `fountain run` command again to continue[/]")


def _print_judge_and_servers(console, status: dict) -> None:
    """The judge's line and one line per fleet server, when the run had them."""
    from fountain.cli.app import shown as escape
    from fountain.run.progress import judge_summary

    judged = judge_summary({"judge": status.get("judge"), "cost_usd": status["cost_usd"]})
    if judged:
        console.print(f"judge     {judged}")
    for server in status.get("servers", ()):
        console.print(
            f"server    {escape(str(server.get('base_url')))}: {server.get('answered', 0):,} answered, "
            f"{server.get('failed', 0):,} failed, taken out {server.get('times_out', 0):,} time(s)"
            + (" [yellow](out at the end of the session)[/]" if server.get("out") else "")
        )
