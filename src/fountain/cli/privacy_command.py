"""`fountain privacy`: plan a Private Evolution budget."""

from __future__ import annotations

import click

from fountain.cli.app import cli

# --- Raters: privacy --------------------------------------------------------------------------


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (not value > 0 or math.isinf(value)):
        raise click.BadParameter("must be a positive, finite number", ctx=ctx, param=param)
    return value


@cli.command("privacy")
@click.option(
    "--sigma",
    type=float,
    callback=_positive,
    help="Noise multiplier of each PE iteration: prints the epsilon it spends.",
)
@click.option(
    "--epsilon",
    type=float,
    callback=_positive,
    help="Privacy budget of the whole run: prints the sigma that spends exactly it.",
)
@click.option(
    "--iterations",
    "-T",
    type=click.IntRange(min=1),
    help="Number of PE iterations (each releases one noisy histogram).",
)
@click.option(
    "--edge", metavar="URL", help="Show the privacy ledger of an edge service (token in $FOUNTAIN_EDGE_TOKEN)."
)
@click.option(
    "--n", "n", type=click.IntRange(min=2), help="Number of private records; sets the default delta = 1/(N ln N)."
)
@click.option("--delta", type=float, help="delta of (epsilon, delta)-DP (default 1/(N ln N)).")
@click.option("--json", "as_json", is_flag=True, help="Print sigma, epsilon, delta and mu as JSON.")
def privacy_command(
    sigma: float | None,
    epsilon: float | None,
    iterations: int | None,
    edge: str | None,
    n: int | None,
    delta: float | None,
    as_json: bool,
) -> None:
    """Plan a Private Evolution budget: epsilon from sigma, or sigma from epsilon; or show the
    ledger of an edge service (--edge URL).

    T iterations with Gaussian noise sigma compose to mu-GDP with mu = sqrt(T)/sigma, converted
    to (epsilon, delta)-DP exactly. Example: fountain privacy --epsilon 4 --iterations 5 --n 2000
    """
    import json
    import math

    from fountain.raters import privacy

    if edge is not None:
        from fountain.cli.edge_command import show_edge_ledger

        if sigma is not None or epsilon is not None or iterations is not None or n is not None or delta is not None:
            raise click.UsageError("--edge shows an edge's ledger: give it alone (with --json at most)")
        show_edge_ledger(edge, as_json)
        return
    if iterations is None:
        raise click.UsageError("give --iterations (or --edge URL to show an edge's ledger)")
    if (sigma is None) == (epsilon is None):
        raise click.UsageError("give exactly one of --sigma (prints epsilon) or --epsilon (prints sigma)")
    if delta is None:
        if n is None:
            raise click.UsageError("give --n (number of private records, for delta = 1/(N ln N)) or --delta")
        delta = privacy.default_delta(n)
        delta_source = "1/(N ln N)"
    else:
        if not 0.0 < delta < 1.0:
            raise click.BadParameter("must lie strictly between 0 and 1", param_hint="--delta")
        delta_source = "given"
    asked = "epsilon" if sigma is not None else "sigma"
    if sigma is not None:
        epsilon = privacy.epsilon_for(sigma, iterations, delta)
    else:
        assert epsilon is not None  # exactly one of sigma and epsilon is given
        sigma = privacy.sigma_for(epsilon, iterations, delta)
    mu = privacy.gdp_mu(sigma, iterations)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "epsilon": epsilon,
                    "sigma": sigma,
                    "iterations": iterations,
                    "delta": delta,
                    "n": n,
                    "mu": None if math.isinf(mu) else mu,
                }
            )
        )
        return
    delta_text = f"{delta:.4g}" + (f" = 1/(N ln N), N = {n}" if delta_source != "given" else "")
    click.echo(f"epsilon = {epsilon:.4g}" if asked == "epsilon" else f"sigma = {sigma:.4g}")
    click.echo(f"  sigma = {sigma:.6g}, epsilon = {epsilon:.6g}, T = {iterations}, delta = {delta_text}, mu = {mu:.4g}")
