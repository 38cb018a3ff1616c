"""The ``fountain`` command line. Click commands only: the work lives in the library modules.

Heavy modules (torch, llama.cpp, SDKs) are imported inside the commands that need them, so
``fountain --help`` and ``fountain validate`` stay fast.
"""
from __future__ import annotations

import os
import sys

import click

from fountain import __version__
from fountain.errors import FountainError


def _console(stderr: bool = False, *, whole_lines: bool = False):
    """A rich console. ``whole_lines``: when the output is not a terminal (a pipe, a file), lines
    are never cut at rich's default of 80 columns (a tree's labels would lose their ends)."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if whole_lines and not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=100_000)
    return console


def print_error(error: FountainError) -> None:
    """One clear message (location, message, hint) on stderr, no traceback."""
    from rich.markup import escape

    console = _console(stderr=True)

    console.print(f"[bold red]error:[/] {escape(str(error))}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fountain")
def cli() -> None:
    """Generate conversational fine-tuning data from a spec folder (setup.yaml + diagram.mermaid)."""


# --- Foundation: validate / diagram / init --------------------------------------------------


@cli.command("validate")
@click.option("--target-folder", "-t", "target_folder", required=True, type=click.Path(path_type=str),
              help="The spec folder (setup.yaml + diagram.mermaid).")
@click.option("--type", "conversation_type", type=click.Choice(["conversation", "instruct"]),
              help="Conversation type; wins over the spec's `type` key (legacy specs: detected from the prompts).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit code 1).")
def validate_command(target_folder: str, conversation_type: str | None, strict: bool) -> None:
    """Check a spec folder (setup.yaml, diagram, prompts, roles) without calling a model."""
    from fountain.errors import SpecError
    from fountain.spec import load_spec

    spec = load_spec(target_folder, type_override=conversation_type)
    if strict and spec.warnings:
        # No "✓ valid" summary first: with --strict a warning makes the spec invalid.
        _print_warnings(spec.warnings)
        raise SpecError(f"{len(spec.warnings)} warning(s) with --strict", location=str(spec.path),
                        hint="fix the warnings above, or run without --strict")
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
    source = {"key": "from the type key", "override": "from --type", "slots": "detected from the %s slots",
              "default": "default"}.get(spec.type_source, spec.type_source)
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
    row("templates", spec.template_style + (" (positional %s slots)" if spec.template_style == "legacy"
                                             else " ({{ variables }})"))
    row("diagram", f"{where}: {counts['entities']} entities, {counts['relationships']} relations, "
                   f"{counts['notes']} notes")
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
    row("derivation calls", f"at most {spec.max_derivation_calls()} ({seeds} seed(s) × {spec.prefix_limit} "
                            f"prefix(es) × {len(spec.derivational_directions)} direction(s) × "
                            f"{gen.derivations_per_direction})")
    if gen.target:
        row("target", f"stop at {gen.target} accepted conversations")
    console.print(f"[green]✓[/] {escape(str(spec.path))} is valid")
    console.print(table)


def _non_empty_path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must not be empty (give the folder to create, e.g. my_spec)",
                                 ctx=ctx, param=param)
    return value


@cli.command("init")
@click.argument("folder", type=click.Path(path_type=str), callback=_non_empty_path)
def init_command(folder: str) -> None:
    """Scaffold a new spec folder: a commented setup.yaml, diagram.mermaid and .gitignore."""
    from rich.markup import escape

    from fountain.scaffold import init_spec

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


# --- Generation: render / run / status --------------------------------------------------------

_TARGET = click.option("--target-folder", "-t", "target_folder", required=True,
                       type=click.Path(file_okay=False, path_type=str),
                       help="The spec folder (setup.yaml + diagram.mermaid).")
_TYPE = click.option("--type", "conversation_type", type=click.Choice(["conversation", "instruct"]),
                     help="Multi-turn conversations or single instruct pairs (default: the spec's).")
# Choices are matched case-insensitively (click hands back the canonical spelling). The lists
# mirror fountain.providers.PROVIDERS and fountain.frameworks (not imported here: --help stays fast).
PROVIDER_CHOICES = click.Choice(["local", "openai", "anthropic", "gemini", "fake"], case_sensitive=False)
FRAMEWORK_CHOICES = click.Choice(["Gen", "GenLLM", "Filter", "Feedback"], case_sensitive=False)
RATER_CHOICES = click.Choice(["PE", "RF"], case_sensitive=False)


def _check_base_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The rule of setup.yaml's model.base_url: an http(s) URL with a host."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise click.BadParameter(f"{value!r} is not an http(s) URL with a host "
                                 "(e.g. --base-url http://localhost:8000/v1)", ctx=ctx, param=param)
    return url


_MODE = click.option("--mode", type=click.Choice(["auto", "json", "turns"]), default=None,
                     help="json: whole conversations as JSON; turns: turn by turn in plain text; "
                          "auto (default): turns for the local model, json for API providers and "
                          "legacy JSON prompts.")


@cli.command("render")
@_TARGET
@_TYPE
@click.option("--direction", help="Direction to render (default: the first of the spec).")
@_MODE
@click.option("--provider", type=PROVIDER_CHOICES,
              help="Provider whose automatic mode to show (default: the spec's, else local).")
@click.option("--json", "as_json", is_flag=True, help="Print the requests as JSON (messages, schema, sampling).")
def render_command(target_folder: str, conversation_type: str | None, direction: str | None,
                   mode: str | None, provider: str | None, as_json: bool) -> None:
    """Print the exact messages a run would send first, without calling a model.

    Shows a seed request and a derivation request built from a placeholder conversation.
    """
    import json

    from fountain.engine import preview_requests, resolve_mode
    from fountain.providers import check_provider_name
    from fountain.spec import load_spec

    spec = load_spec(target_folder, type_override=conversation_type)
    if direction is not None and direction not in (*spec.seed_directions, *spec.derivational_directions):
        raise FountainError(f"the spec has no direction {direction!r}", location="--direction",
                            hint="directions: " + ", ".join(dict.fromkeys(
                                (*spec.seed_directions, *spec.derivational_directions))))
    provider_name = check_provider_name(provider or spec.model.provider or "local", location="--provider")
    resolved = resolve_mode(spec, provider_name, mode)
    requests = preview_requests(spec, mode=resolved, direction=direction)
    if as_json:
        click.echo(json.dumps([{"title": title, "messages": [{"role": m.role, "content": m.content}
                                                             for m in request.messages],
                                "schema": request.schema, "sampling": request.sampling.to_dict()}
                               for title, request in requests], indent=2, ensure_ascii=False))
        return
    click.echo(f"# mode: {resolved} ({spec.generation.type})")
    for title, request in requests:
        click.echo(f"\n==================== {title} ====================")
        for message in request.messages:
            click.echo(f"--- {message.role} ---")
            click.echo(message.content.rstrip())
        if request.schema is not None:
            click.echo("--- (the answer is constrained to the conversation JSON schema: fountain render --json shows it) ---")


def _with_sigterm_as_interrupt(call):
    """Run ``call`` with SIGTERM treated like Ctrl-C, so `timeout` or a job scheduler stopping a
    run still lets it save the dataset and manifest (SIGKILL cannot be caught: resume covers it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return call()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        return call()
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command("run")
@_TARGET
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=str),
              help="Output folder (default: <target-folder>/output).")
@click.option("--provider", type=PROVIDER_CHOICES, help="local (default), openai, anthropic, gemini or fake.")
@click.option("--model", help="Model name (local: a GGUF file path).")
@click.option("--base-url", callback=_check_base_url,
              help="Endpoint of an OpenAI-compatible server (vLLM, Ollama, ...), e.g. http://localhost:8000/v1.")
@click.option("--replay", type=click.Path(dir_okay=False, path_type=str),
              help="Fake provider: replay recorded outputs (Janus outputs.json or fountain JSONL).")
@_TYPE
@click.option("--format", "format", type=click.Choice(["messages", "sharegpt", "janus"]),
              help="Dataset format (default: the spec's, else messages).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Conversations generated at once.")
@click.option("--seed", type=int, help="Sampling seed: makes fake and local runs reproducible.")
@click.option("--seeds-per-direction", type=click.IntRange(min=1),
              help="Seed conversations per seed direction (and persona) (default: the spec's).")
@click.option("--derivations-per-direction", type=click.IntRange(min=0),
              help="Derivations per accepted seed, prefix and derivational direction; 0: seeds only "
                   "(default: the spec's).")
@click.option("--max-turns", type=click.IntRange(min=1), help="Most turns a model writes per conversation.")
@_MODE
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing on success: no progress bar, no summary, no dataset path (errors still go to stderr).")
@click.option("--resume", type=click.Choice(["if-compatible", "always", "never"]), default=None,
              help="if-compatible (default): continue a run of the same spec and model, start an "
                   "empty folder; always: continue (same spec, even with another model), never start "
                   "fresh; never: refuse a folder that holds a run.")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute at most.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), help="Tokens per minute at most.")
@click.option("--budget", "budget_usd", type=click.FloatRange(min=0),
              help="Stop cleanly before the run's cost (USD, all sessions) would pass this.")
@click.option("--prices", type=click.Path(dir_okay=False, path_type=str),
              help="JSON price table overriding the built-in one (also: FOUNTAIN_PRICES).")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=str),
              help="Response cache file (default: <output>/cache.sqlite); shareable between runs.")
@click.option("--no-cache", is_flag=True, default=None, help="Neither read nor write the response cache.")
@click.option("--max-error-rate", type=click.FloatRange(min=0, max=1),
              help="Stop when more than this share of the last 50 requests failed (default 0.5).")
@click.option("--framework", type=FRAMEWORK_CHOICES, help="Gen (default): generate, then dedup; GenLLM: the model first writes a "
                                   "scenario and personas for the scene; Filter: generate, rate and keep "
                                   "until --target or --iterations rounds; Feedback: Private Evolution "
                                   "(needs --rater PE).")
@click.option("--rater", type=RATER_CHOICES, help="PE: Private Evolution, differentially private (needs --epsilon). RF: Real "
                              "Filter, which is NOT differentially private (it reads the real data "
                              "directly; never use it on data that must stay private). Both need --real-data.")
@click.option("--real-data", type=click.Path(dir_okay=False, path_type=str),
              help="Real conversations for the rater (JSONL in a format fountain exports, or a Janus "
                   "outputs.json). Never copied to an output, log or cache.")
@click.option("--epsilon", type=float, help="PE: privacy budget epsilon of the whole run (inf: no privacy).")
@click.option("--delta", type=float, help="PE: delta (default 1/(N ln N) for N real conversations).")
@click.option("--sigma", type=float,
              help="PE: noise per iteration (default: what spends exactly --epsilon); a plan over "
                   "the budget does not start.")
@click.option("--iterations", type=click.IntRange(min=1),
              help="Filter: rounds at most; Feedback: PE iterations (default: privacy.iterations, 1).")
@click.option("--target", type=click.IntRange(min=1),
              help="Stop once this many conversations are accepted (Filter: kept after rating).")
@click.option("--embedder", help="sentence-transformers model folder or locally cached name "
                                 "(default: the bundled all-MiniLM-L6-v2).")
@click.option("--k", type=click.IntRange(min=1),
              help="Neighbours: PE votes of each real conversation (default 1), RF k-NN (default 5).")
@click.option("--personas", type=click.IntRange(min=1), help="GenLLM: personas the model writes (default 5).")
@click.option("--dry-run", is_flag=True, help="Print the calls and cost the run implies; call no model.")
def run_command(target_folder: str, conversation_type: str | None, quiet: bool, dry_run: bool = False,
                **options) -> None:
    """Generate the dataset of a spec folder: seeds, derivations, validation, dedup, export.

    Writes seeds.jsonl, derivations.jsonl, rejects.jsonl, dataset.jsonl (or outputs.json) and
    manifest.json. Interrupted or stopped runs continue when the same command is run again.
    --framework composes rounds of generation and rating (docs/raters.md, "Frameworks").
    """
    from fountain.engine import RunOptions
    from fountain.frameworks import plan_framework, run_framework
    from fountain.spec import load_spec

    # Every option whose name is a RunOptions field passes through as it is.
    fields = set(RunOptions.__dataclass_fields__)
    run_options = RunOptions(quiet=quiet, **{k: v for k, v in options.items() if k in fields and v is not None})
    spec = load_spec(target_folder, type_override=conversation_type)
    # Framework, rater, real data and privacy budget are checked before any token is spent.
    plan = plan_framework(spec, run_options)
    if dry_run:
        from rich.markup import escape

        _console().print(escape(plan.describe()))
        _print_dry_run(plan.spec, run_options)
        return
    _check_run_files(run_options)
    from fountain.engine import effective_spec, output_folder
    from fountain.manifest import output_lock

    # One run per output folder: a second one is refused at once instead of paying twice.
    with output_lock(output_folder(effective_spec(spec, run_options), run_options)):
        result = _with_sigterm_as_interrupt(lambda: run_framework(spec, run_options))
    if not quiet:
        from fountain.progress import summary_table

        _console(stderr=True).print(summary_table(result))
        click.echo(str(result.dataset_path))


def _check_run_files(options) -> None:
    """Open --cache and load --prices before anything is written (or a model loaded), so a bad
    path fails at once and leaves the output folder as it was."""
    if options.prices is not None:
        from fountain.cost import PriceTable

        PriceTable.load(options.prices)
    if options.cache is not None and not options.no_cache:
        from fountain.cache import ResponseCache

        ResponseCache(options.cache).close()


def _print_dry_run(spec, options) -> None:
    """The calls and cost ``spec`` implies with ``options``, and what would happen to the output."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from fountain.cost import PriceTable, estimate_run, estimate_tokens
    from fountain.engine import effective_spec, output_folder, preview_requests, resolve_mode
    from fountain.manifest import check_resume
    from fountain.providers import resolve_provider_config

    effective = effective_spec(spec, options)
    name = options.provider if options.replay is None else "fake"
    config = resolve_provider_config(effective.model, provider=name, model=options.model,
                                     base_url=options.base_url)
    mode = resolve_mode(effective, config.provider, options.mode)
    prompts = []
    for _, request in preview_requests(effective, mode=mode, seed=options.seed):
        schema = json.dumps(request.schema) if request.schema is not None else ""
        prompts.append(estimate_tokens(request.prompt_text()) + estimate_tokens(schema))
    prices = PriceTable.load(options.prices)
    estimate = estimate_run(effective, prices, config.provider, config.model, mode=mode,
                            prompt_tokens=(prompts[0], prompts[-1]) if prompts else None)
    console = _console()
    model_label = config.model or ("(bundled model)" if config.provider == "local" else "")
    console.print(f"[bold]dry run[/] of {escape(str(spec.folder))}: {config.provider} "
                  f"{escape(str(model_label))}, mode {mode}; no model is called")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("", "conversations", "requests"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("seeds (exact)", f"{estimate.seed_conversations:,}",
                  f"{estimate.seed_calls:,}" + ("" if estimate.seed_calls_exact else " at least"))
    table.add_row("derivations (at most)", f"{estimate.derivation_conversations_max:,}",
                  f"{estimate.derivation_calls_max:,}")
    table.add_row("with every retry (at most)", "", f"{estimate.calls_max:,}")
    console.print(table)
    console.print(f"tokens per request: about {estimate.prompt_tokens_per_call:,} in, "
                  f"{estimate.completion_tokens_low:,}–{estimate.completion_tokens_high:,} out")
    if estimate.cost_low is None:
        console.print(f"cost: [yellow]unknown[/] (no price for {escape(config.provider)} model "
                      f"{escape(str(config.model))}; give one with --prices FILE)")
        if options.budget_usd is not None:
            console.print("[yellow]--budget needs a price for the model: the run would refuse to "
                          "start without one[/]")
    else:
        console.print(f"estimated cost: ${estimate.cost_low:,.4f} – ${estimate.cost_high:,.4f}"
                      + (f"  (budget ${options.budget_usd:,.2f})" if options.budget_usd is not None else ""))
    folder = output_folder(effective, options)
    identity = {"provider": config.provider, "model": config.model, "base_url": config.base_url}
    decision = check_resume(folder, spec, options.resume, provider=identity)
    if decision.resuming:
        console.print(f"output: would resume the run in {escape(str(folder))} (answers already "
                      "in the cache are not requested or paid again)")
    else:
        console.print(f"output: would start a new run in {escape(str(folder))}")


@cli.command("status")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--spec", "spec_folder", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Compare against this spec folder (default: the one the run used, or the output "
                   "folder's parent when that one has moved).")
def status_command(output_dir: str, as_json: bool, spec_folder: str | None) -> None:
    """What the run in OUTPUT_DIR has done and has left: spec version, counts, usage and cost."""
    import json

    from fountain.manifest import collect_status

    status = collect_status(output_dir, spec_folder=spec_folder)
    if as_json:
        click.echo(json.dumps(status, indent=2, ensure_ascii=False))
        return
    _print_status(status)


def _print_status(status: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    state = status["status"]
    colour = {"completed": "green", "running": "yellow", "stopped": "yellow", "failed": "red"}.get(state, "white")
    label = "running (or interrupted)" if state == "running" else state
    console.print(f"[bold]{escape(status['output'])}[/]  [{colour}]{label}[/]"
                  + (f" — {escape(str(status['stop_reason']))}" if status.get("stop_reason") else ""))

    spec = status["spec"]
    git = spec.get("git")
    git_text = "not in git" if not git else f"commit {git['commit'][:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")
    changed = spec.get("changed_since")
    if changed == []:
        changed_text = "unchanged since"
    elif isinstance(changed, list):
        changed_text = f"[yellow]changed since: {escape(', '.join(changed))}[/]"
    else:
        changed_text = escape(changed) if changed else ""
    console.print(f"spec      {escape(spec.get('folder') or '?')}  fingerprint {spec['fingerprint'][:12]}, "
                  f"{git_text}" + (f"; {changed_text}" if changed_text else ""))
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
    table.add_row("seeds", f"{seeds['requested']:,}", f"{seeds['accepted']:,}", f"{seeds['rejected']:,}",
                  f"{seeds['left']:,}")
    table.add_row("derivations", f"{derivations['planned']:,}", f"{derivations['accepted']:,}",
                  f"{derivations['rejected']:,}", f"{derivations['left']:,}")
    console.print(table)
    if seeds["left"]:
        console.print("[dim]derivations are planned as seeds are accepted: the seeds left add more[/]")
    if status["rejected_by_reason"]:
        console.print("rejected  " + ", ".join(f"{escape(reason)} {n:,}"
                                                for reason, n in status["rejected_by_reason"].items()))
    if status.get("dataset_records") is not None:
        console.print(f"dataset   {status['dataset_records']:,} records in "
                      f"{escape(status.get('dataset_file', 'dataset.jsonl'))}")
    usage = status["usage"]
    cost = f"${status['cost_usd']:.4f}" + ("" if status["cost_complete"] else " (some models unpriced)")
    console.print(f"usage     {usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} "
                  f"completion tokens; cost {cost}; {status['elapsed_s']:.0f} s over "
                  f"{status['sessions']} session(s)")
    for problem in status.get("problems", ()):
        console.print(f"[yellow]warning:[/] {escape(problem)}")
    if status.get("usage_source") == "journals":
        console.print("[dim]usage and cost counted from the journals (the session did not end cleanly)[/]")
    for name in status["torn_lines"]:
        console.print(f"[yellow]note:[/] {escape(name)} ends with a torn line from an interrupted write; "
                      "the next run drops it")
    if state != "completed":
        console.print("[dim]run the same `fountain run` command again to continue[/]")


# --- Raters: privacy --------------------------------------------------------------------------


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (not value > 0 or math.isinf(value)):
        raise click.BadParameter("must be a positive, finite number", ctx=ctx, param=param)
    return value


@cli.command("privacy")
@click.option("--sigma", type=float, callback=_positive,
              help="Noise multiplier of each PE iteration: prints the epsilon it spends.")
@click.option("--epsilon", type=float, callback=_positive,
              help="Privacy budget of the whole run: prints the sigma that spends exactly it.")
@click.option("--iterations", "-T", type=click.IntRange(min=1), required=True,
              help="Number of PE iterations (each releases one noisy histogram).")
@click.option("--n", "n", type=click.IntRange(min=2),
              help="Number of private records; sets the default delta = 1/(N ln N).")
@click.option("--delta", type=float, help="delta of (epsilon, delta)-DP (default 1/(N ln N)).")
@click.option("--json", "as_json", is_flag=True, help="Print sigma, epsilon, delta and mu as JSON.")
def privacy_command(sigma: float | None, epsilon: float | None, iterations: int, n: int | None,
                    delta: float | None, as_json: bool) -> None:
    """Plan a Private Evolution budget: epsilon from sigma, or sigma from epsilon.

    T iterations with Gaussian noise sigma compose to mu-GDP with mu = sqrt(T)/sigma, converted
    to (epsilon, delta)-DP exactly. Example: fountain privacy --epsilon 4 --iterations 5 --n 2000
    """
    import json
    import math

    from fountain.raters import privacy

    if (sigma is None) == (epsilon is None):
        raise click.UsageError("give exactly one of --sigma (prints epsilon) or --epsilon (prints sigma)")
    if delta is None:
        if n is None:
            raise click.UsageError("give --n (number of private records, for delta = 1/(N ln N)) "
                                   "or --delta")
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
        sigma = privacy.sigma_for(epsilon, iterations, delta)
    mu = privacy.gdp_mu(sigma, iterations)
    if as_json:
        click.echo(json.dumps({"epsilon": epsilon, "sigma": sigma, "iterations": iterations,
                               "delta": delta, "n": n, "mu": None if math.isinf(mu) else mu}))
        return
    delta_text = f"{delta:.4g}" + (f" = 1/(N ln N), N = {n}" if delta_source != "given" else "")
    click.echo(f"epsilon = {epsilon:.4g}" if asked == "epsilon" else f"sigma = {sigma:.4g}")
    click.echo(f"  sigma = {sigma:.6g}, epsilon = {epsilon:.6g}, T = {iterations}, delta = {delta_text}, "
               f"mu = {mu:.4g}")


# --- Report -------------------------------------------------------------------------------------


@cli.command("report")
@click.argument("output", type=click.Path(path_type=str))
@click.option("--real-data", type=click.Path(dir_okay=False, path_type=str),
              help="Real conversations (JSONL or a Janus outputs.json) to compare with.")
@click.option("--spec", "spec_dir", type=click.Path(file_okay=False, path_type=str),
              help="Spec folder whose diagram grounds the coverage figures (default: from the "
                   "manifest, or the folder around OUTPUT).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=str),
              help="Also write a self-contained HTML report (plots, browsable conversations) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout (nothing else).")
@click.option("--sample", type=click.IntRange(min=2), default=500, show_default=True,
              help="Conversations in the random sample for self-BLEU, readability and embeddings.")
@click.option("--browse", type=click.IntRange(min=0), default=50, show_default=True,
              help="Conversations shown in the HTML report.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random samples.")
@click.option("--no-embed", is_flag=True, help="Skip the embedding metrics (no model is loaded).")
def report_command(output: str, real_data: str | None, spec_dir: str | None, html_path: str | None,
                   as_json: bool, sample: int, browse: int, seed: int, no_embed: bool) -> None:
    """Measure a generated dataset: counts, structure, diversity, grounding, readability, similarity
    to real data and the privacy ledger.

    OUTPUT is an output folder of `fountain run`, a dataset.jsonl, or a Janus outputs.json.
    """
    from fountain.report import build_report

    status = _console(stderr=True)
    report = build_report(output, real_data=real_data, spec=spec_dir, sample=sample, seed=seed,
                          embed=not no_embed, browse=browse,
                          progress=lambda message: status.print(f"[dim]report: {message}…[/]"))
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
            "interrupted: everything written so far is kept; run the same command again to resume")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(0)
