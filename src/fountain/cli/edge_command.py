"""`fountain edge serve`: the data owner's voting service; and the ledger view of
`fountain privacy --edge URL`."""

from __future__ import annotations

import click

from fountain.cli.app import _console, cli


@cli.group("edge")
def edge_group() -> None:
    """Private Evolution votes computed where the private data lives (docs/edge.md)."""


@edge_group.command("serve")
@click.option(
    "--real-data",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="The private conversations (JSONL as fountain exports, or a Janus outputs.json). Never sent anywhere.",
)
@click.option("--epsilon", type=float, required=True, help="The owner's privacy budget for all votes together.")
@click.option("--delta", type=float, help="delta of (epsilon, delta)-DP (default 1/(N ln N); it then reveals N).")
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Votes the budget is planned for: sets the noise sigma of every vote.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (non-loopback needs a token)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="Folder of the persistent ledger (default: .fountain-edge beside the real data).",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=str), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=str), help="TLS private key (PEM).")
@click.option("--category", help="Category of records that name none (default: refuse them).")
@click.option("--embedder", help="sentence-transformers model folder (default: the bundled all-MiniLM-L6-v2).")
@click.option("--max-candidates", type=click.IntRange(min=1), default=4096, show_default=True)
def serve_command(
    real_data: str,
    epsilon: float,
    delta: float | None,
    iterations: int,
    host: str,
    port: int,
    state_dir: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    category: str | None,
    embedder: str | None,
    max_candidates: int,
) -> None:
    """Serve noisy PE vote histograms over private data, within the owner's privacy budget.

    The bearer token comes from $FOUNTAIN_EDGE_TOKEN (required unless --host is loopback).
    Example: FOUNTAIN_EDGE_TOKEN=... fountain edge serve --real-data private.jsonl --epsilon 4
    """
    from pathlib import Path

    from fountain.edge.config import EdgeConfig, token_from_env
    from fountain.edge.server import serve

    real = Path(real_data).expanduser()
    config = EdgeConfig(
        real_data=real,
        epsilon=epsilon,
        iterations=iterations,
        state_dir=Path(state_dir).expanduser() if state_dir else real.resolve().parent / ".fountain-edge",
        delta=delta,
        host=host,
        port=port,
        token=token_from_env(),
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        embedder=embedder,
        category=category,
        max_candidates=max_candidates,
    )
    console = _console(stderr=True)

    def ready(box) -> None:
        ledger = box.ledger
        scheme = "https" if config.tls else "http"
        console.print(
            f"edge {ledger.edge_id}: {box.records} private conversation(s) embedded in memory; "
            f"sigma = {box.sigma:.4g} per vote, delta = {ledger.delta:.3g}; epsilon spent "
            f"{ledger.epsilon:.4g} of {ledger.epsilon_budget:.4g} ({ledger.votes_left(box.sigma)} vote(s) left); "
            f"ledger {ledger.path}"
        )
        if config.token is None:
            console.print("[yellow]warning: no FOUNTAIN_EDGE_TOKEN: anyone on this machine can spend the budget[/]")
        if delta is None:
            console.print("[yellow]note: the default delta 1/(N ln N) reveals N, the number of records, to clients[/]")
        elif box.records and ledger.delta >= 1.0 / box.records:
            console.print(
                f"[yellow]warning: delta = {ledger.delta:.3g} is not below 1/N for N = {box.records}: such a "
                "guarantee allows revealing a whole record[/]"
            )
        if box.records < 3 * box.sigma:
            console.print(
                f"[yellow]warning: {box.records} record(s) vote against noise of sigma = {box.sigma:.3g} per "
                "count: the generator will get mostly noise (more data, a larger --epsilon or fewer --iterations help)[/]"
            )
        console.print(f"listening on {scheme}://{host}:{port}")

    import logging

    # The service's own lines (votes answered, refused: numbers only) beside uvicorn's.
    # Attached for the service's lifetime only, and taken off after.
    log = logging.getLogger("fountain.edge")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        serve(config, on_ready=ready)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after a clean shutdown
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    console.print(f"edge stopped; its ledger is kept in {config.state_dir}")


def show_edge_ledger(url: str, as_json: bool) -> None:
    """`fountain privacy --edge URL`: the edge's ledger, as a table or JSON."""
    import json

    from fountain.edge.client import EdgeClient

    client = EdgeClient(url)
    ledger = client.ledger()
    if as_json:
        click.echo(json.dumps(ledger))
        return
    click.echo(
        f"{client.name} (edge {ledger.get('edge_id')}): epsilon = {float(ledger['epsilon']):.4g} of "
        f"{float(ledger['epsilon_budget']):.4g}, delta = {float(ledger['delta']):.3g}, "
        f"{len(ledger['votes'])} vote(s), {ledger['votes_left']} left at sigma = {float(ledger['sigma']):.4g}"
    )
    for vote in ledger["votes"]:
        if isinstance(vote, dict):
            click.echo(
                f"  vote {vote.get('vote')}: {vote.get('time', '?')}, sigma = {vote.get('sigma')}, "
                f"epsilon after = {vote.get('epsilon')}, {vote.get('candidates', '?')} candidate(s)"
            )
