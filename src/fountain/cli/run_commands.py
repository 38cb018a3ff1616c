"""`fountain run` (and --dry-run, --batch) and the options shared with `fountain render`."""

from __future__ import annotations

import click

from fountain.cli.app import ALLOW_PATH, _console, cli
from fountain.cli.batch_command import batch_options, refuse_direct_run_over_waiting_jobs, run_batch_command

# --- Generation: render / run / status --------------------------------------------------------

_TARGET = click.option(
    "--target-folder",
    "-t",
    "target_folder",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="The spec folder (setup.yaml + diagram.mermaid).",
)
_TYPE = click.option(
    "--type",
    "conversation_type",
    type=click.Choice(["conversation", "instruct"]),
    help="Multi-turn conversations or single instruct pairs (default: the spec's).",
)
# Choices are matched case-insensitively (click hands back the canonical spelling). The lists
# mirror fountain.providers.PROVIDERS and fountain.frameworks (not imported here: --help stays fast).
PROVIDER_CHOICES = click.Choice(["local", "openai", "anthropic", "gemini", "fake", "vllm"], case_sensitive=False)
FRAMEWORK_CHOICES = click.Choice(["Gen", "GenLLM", "Filter", "Feedback"], case_sensitive=False)
RATER_CHOICES = click.Choice(["PE", "RF"], case_sensitive=False)


def _check_base_url(ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...] | None):
    """The rule of setup.yaml's model.base_url: an http(s) URL with a host (each, when repeated)."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_check_base_url(ctx, param, v) for v in value) or None
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise click.BadParameter(
            f"{value!r} is not an http(s) URL with a host (e.g. --base-url http://localhost:8000/v1)",
            ctx=ctx,
            param=param,
        )
    return url


_MODE = click.option(
    "--mode",
    type=click.Choice(["auto", "json", "turns"]),
    default=None,
    help="json: whole conversations as JSON; turns: turn by turn in plain text; "
    "auto (default): turns for the local model, json for API providers and "
    "legacy JSON prompts.",
)


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
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=str),
    help="Output folder (default: <target-folder>/output).",
)
@click.option(
    "--provider", type=PROVIDER_CHOICES, help="local (default), openai, anthropic, gemini, fake or vllm (GPU hosts)."
)
@click.option("--model", help="Model name (local: a GGUF file path).")
@click.option(
    "--base-url",
    callback=_check_base_url,
    multiple=True,
    help="Endpoint of an OpenAI-compatible server (vLLM, Ollama, ...), e.g. http://localhost:8000/v1; "
    "give it several times to spread requests over a fleet of servers.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for one answer (default: model.timeout_s, else 120; self-hosted servers "
    "that queue get more as their answers show).",
)
@click.option(
    "--structured-output",
    type=click.Choice(["auto", "json_schema", "json_object", "none"]),
    help="OpenAI-compatible servers: the response_format to send (default auto: json_schema, "
    "stepping down to what the server accepts).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="local (default): asyncio in this process; ray: generation actors on a Ray cluster "
    "(pip install 'fountain[ray]'; docs/distributed.md).",
)
@click.option("--ray-address", help="Ray cluster to join with --executor ray (default: start a local Ray).")
@click.option("--ray-actors", type=click.IntRange(min=1), help="Generation actors with --executor ray (default 2).")
@click.option(
    "--validation-processes",
    type=click.IntRange(min=0),
    help="Validate json answers in N worker processes, beside the event loop (default for remote "
    "APIs in json mode: 1 per 4 CPUs, at least 1 from 2 CPUs, at most 4; 0: in the event loop).",
)
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, path_type=str),
    help="Fake provider: replay recorded outputs (Janus outputs.json or fountain JSONL).",
)
@_TYPE
@click.option(
    "--format",
    "format",
    type=click.Choice(["messages", "sharegpt", "janus"]),
    help="Dataset format (default: the spec's, else messages).",
)
@click.option(
    "--prefix-loss",
    type=click.Choice(["keep", "mask"]),
    help="keep (default): train on every assistant turn; mask: weight 0 on the assistant turns a "
    "derivation repeats from its parent (OpenAI fine-tuning format; Axolotl reads it).",
)
@click.option("--concurrency", type=click.IntRange(min=1), help="Conversations generated at once.")
@click.option("--seed", type=int, help="Sampling seed: makes fake and local runs reproducible.")
@click.option(
    "--seeds-per-direction",
    type=click.IntRange(min=1),
    help="Seed conversations per seed direction (and persona) (default: the spec's).",
)
@click.option(
    "--derivations-per-direction",
    type=click.IntRange(min=0),
    help="Derivations per accepted seed, prefix and derivational direction; 0: seeds only (default: the spec's).",
)
@click.option("--max-turns", type=click.IntRange(min=1), help="Most turns a model writes per conversation.")
@_MODE
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print nothing on success: no progress bar, no summary, no dataset path (errors still go to stderr).",
)
@click.option(
    "--resume",
    type=click.Choice(["if-compatible", "always", "never"]),
    default=None,
    help="if-compatible (default): continue a run of the same spec and model, start an "
    "empty folder; always: continue (same spec, even with another model), never start "
    "fresh; never: refuse a folder that holds a run.",
)
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute at most.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), help="Tokens per minute at most.")
@click.option(
    "--budget",
    "budget_usd",
    type=click.FloatRange(min=0),
    help="Stop cleanly before the run's cost (USD, all sessions) would pass this.",
)
@click.option(
    "--prices",
    type=click.Path(dir_okay=False, path_type=str),
    help="JSON price table overriding the built-in one (also: FOUNTAIN_PRICES).",
)
@click.option(
    "--cache",
    type=click.Path(dir_okay=False, path_type=str),
    help="Response cache file (default: <output>/cache.sqlite); shareable between runs.",
)
@click.option("--no-cache", is_flag=True, default=None, help="Neither read nor write the response cache.")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(min=0, max=1),
    help="Stop when more than this share of the last 50 requests failed (default 0.5).",
)
@click.option(
    "--framework",
    type=FRAMEWORK_CHOICES,
    help="Gen (default): generate, then dedup; GenLLM: the model first writes a "
    "scenario and personas for the scene; Filter: generate, rate and keep "
    "until --target or --iterations rounds; Feedback: Private Evolution "
    "(needs --rater PE).",
)
@click.option(
    "--rater",
    type=RATER_CHOICES,
    help="PE: Private Evolution, differentially private (needs --epsilon). RF: Real "
    "Filter, which is NOT differentially private (it reads the real data "
    "directly; never use it on data that must stay private). Both need --real-data.",
)
@click.option(
    "--real-data",
    type=click.Path(dir_okay=False, path_type=str),
    help="Real conversations for the rater (JSONL in a format fountain exports, or a Janus "
    "outputs.json). Never copied to an output, log or cache.",
)
@click.option("--epsilon", type=float, help="PE: privacy budget epsilon of the whole run (inf: no privacy).")
@click.option(
    "--edge",
    multiple=True,
    metavar="URL",
    help="Feedback/PE: a data owner's `fountain edge serve` votes instead of --real-data (repeatable; "
    "token in $FOUNTAIN_EDGE_TOKEN; docs/edge.md).",
)
@click.option("--delta", type=float, help="PE: delta (default 1/(N ln N) for N real conversations).")
@click.option(
    "--sigma",
    type=float,
    help="PE: noise per iteration (default: what spends exactly --epsilon); a plan over the budget does not start.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    help="Filter: rounds at most; Feedback: PE iterations (default: privacy.iterations, 1).",
)
@click.option(
    "--target",
    type=click.IntRange(min=1),
    help="Stop once this many conversations are accepted (Filter: kept after rating).",
)
@click.option(
    "--embedder",
    help="sentence-transformers model folder or locally cached name (default: the bundled all-MiniLM-L6-v2).",
)
@click.option(
    "--k",
    type=click.IntRange(min=1),
    help="Neighbours: PE votes of each real conversation (default 1), RF k-NN (default 5).",
)
@click.option("--personas", type=click.IntRange(min=1), help="GenLLM: personas the model writes (default 5).")
@click.option(
    "--judge",
    metavar="PROVIDER[:MODEL]",
    help="Score each accepted conversation with this model against the spec's rubric (judge: in "
    "setup.yaml; default rubric otherwise); below the threshold is a reject judge:<criterion>. "
    "'none' turns the spec's judge off. docs/judge.md",
)
@click.option("--dry-run", is_flag=True, help="Print the calls and cost the run implies; call no model.")
@batch_options
@ALLOW_PATH
@click.option(
    "--allow-key-env",
    "allow_key_env",
    multiple=True,
    metavar="NAME",
    help="Let the spec send the key in environment variable NAME to the base_url written in "
    "setup.yaml (refused by default unless NAME is the provider's own key variable); repeatable.",
)
def run_command(
    target_folder: str,
    conversation_type: str | None,
    quiet: bool,
    dry_run: bool = False,
    allow_path: tuple[str, ...] = (),
    **options,
) -> None:
    """Generate the dataset of a spec folder: seeds, derivations, validation, dedup, export.

    Writes seeds.jsonl, derivations.jsonl, rejects.jsonl, dataset.jsonl (or outputs.json) and
    manifest.json. Interrupted or stopped runs continue when the same command is run again.
    --framework composes rounds of generation and rating (docs/raters.md, "Frameworks").
    """
    from fountain.frameworks import plan_framework, run_framework
    from fountain.run.options import GROUP_OF, RunOptions
    from fountain.spec.load import load_spec

    urls = options.pop("base_url", None) or ()
    options["base_url"] = urls[0] if urls else None
    options["base_urls"] = tuple(urls) if len(urls) > 1 else None
    # Every option whose name is a RunOptions one (a flat name of its groups) passes through as it is.
    run_options = RunOptions(quiet=quiet, **{k: v for k, v in options.items() if k in GROUP_OF and v is not None})
    spec = load_spec(target_folder, type_override=conversation_type, allow_paths=allow_path)
    # Framework, rater, real data and privacy budget are checked before any token is spent.
    plan = plan_framework(spec, run_options)
    if dry_run:
        from rich.markup import escape

        _console().print(escape(plan.describe()))
        _print_dry_run(plan.spec, run_options)
        if options.get("batch") or options.get("batch_wait"):
            _console().print("with --batch: the batch APIs bill half of this estimate (docs/batch.md)")
        return
    _check_run_files(run_options)
    if options.get("batch") or options.get("batch_wait"):
        result = run_batch_command(spec, run_options, plan, options, quiet)
        if not quiet:
            from fountain.run.progress import summary_table

            _console(stderr=True).print(summary_table(result))
            click.echo(str(result.dataset_path))
        return
    from fountain.run.gitignore import ensure_output_ignored
    from fountain.run.lock import output_lock
    from fountain.run.options import effective_spec, output_folder

    out_dir = output_folder(effective_spec(spec, run_options), run_options)
    written = ensure_output_ignored(spec.folder, out_dir)
    if written is not None and not quiet:
        _console(stderr=True).print(f"wrote {written}: the output folder (with its response cache) stays out of git")
    # One run per output folder: a second one is refused at once instead of paying twice.
    with output_lock(out_dir) as folder:
        refuse_direct_run_over_waiting_jobs(folder)
        result = _with_sigterm_as_interrupt(lambda: run_framework(spec, run_options))
    if not quiet:
        from fountain.run.progress import summary_table

        _console(stderr=True).print(summary_table(result))
        click.echo(str(result.dataset_path))
    failed = (result.counts.get("rejected") or {}).get("provider_error", 0)
    if failed:
        from fountain.errors import ProviderRejectsError

        raise ProviderRejectsError(
            f"{failed} task(s) ended as provider_error rejects: the dataset is written but incomplete",
            location=str(result.output_dir),
            hint="rejects.jsonl names each failure; run the same command again to retry them (exit code 3)",
        )


def _check_run_files(options) -> None:
    """Open --cache and load --prices before anything is written (or a model loaded), so a bad
    path fails at once and leaves the output folder as it was."""
    if options.budget.prices is not None:
        from fountain.providers.cost import PriceTable

        PriceTable.load(options.budget.prices)
    if options.budget.cache is not None and not options.budget.no_cache:
        from fountain.providers.cache import ResponseCache

        ResponseCache(options.budget.cache).close()


def _print_dry_run(spec, options) -> None:
    """The calls and cost ``spec`` implies with ``options``, and what would happen to the output."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from fountain.generation.preview import preview_requests
    from fountain.generation.requests import resolve_mode
    from fountain.providers import resolve_provider_config
    from fountain.providers.cost import PriceTable, estimate_run, estimate_tokens
    from fountain.run.options import effective_spec, output_folder
    from fountain.run.resume import check_resume

    effective = effective_spec(spec, options)
    name = options.llm.provider if options.llm.replay is None else "fake"
    config = resolve_provider_config(
        effective.model,
        provider=name,
        model=options.llm.model,
        base_url=options.llm.base_url,
        allow_key_envs=options.llm.allow_key_env,
        base_urls=options.llm.base_urls,
    )
    mode = resolve_mode(effective, config.provider, options.generation.mode)
    prompts = []
    for _, request in preview_requests(effective, mode=mode, seed=options.generation.seed):
        schema = json.dumps(request.schema) if request.schema is not None else ""
        prompts.append(estimate_tokens(request.prompt_text()) + estimate_tokens(schema))
    prices = PriceTable.load(options.budget.prices)
    estimate = estimate_run(
        effective,
        prices,
        config.provider,
        config.model,
        mode=mode,
        prompt_tokens=(prompts[0], prompts[-1]) if prompts else None,
    )
    console = _console()
    model_label = config.model or ("(bundled model)" if config.provider == "local" else "")
    console.print(
        f"[bold]dry run[/] of {escape(str(spec.folder))}: {config.provider} "
        f"{escape(str(model_label))}, mode {mode}; no model is called"
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("", "conversations", "requests"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row(
        "seeds (exact)",
        f"{estimate.seed_conversations:,}",
        f"{estimate.seed_calls:,}" + ("" if estimate.seed_calls_exact else " at least"),
    )
    table.add_row(
        "derivations (at most)", f"{estimate.derivation_conversations_max:,}", f"{estimate.derivation_calls_max:,}"
    )
    table.add_row("with every retry (at most)", "", f"{estimate.calls_max:,}")
    console.print(table)
    console.print(
        f"tokens per request: about {estimate.prompt_tokens_per_call:,} in, "
        f"{estimate.completion_tokens_low:,}–{estimate.completion_tokens_high:,} out"
    )
    if estimate.cost_low is None:
        console.print(
            f"cost: [yellow]unknown[/] (no price for {escape(config.provider)} model "
            f"{escape(str(config.model))}; give one with --prices FILE)"
        )
        if options.budget.budget_usd is not None:
            console.print("[yellow]--budget needs a price for the model: the run would refuse to start without one[/]")
    else:
        console.print(
            f"estimated cost: ${estimate.cost_low:,.4f} – ${estimate.cost_high:,.4f}"
            + (f"  (budget ${options.budget.budget_usd:,.2f})" if options.budget.budget_usd is not None else "")
        )
    from fountain.run.judge_config import dry_run_lines

    for line in dry_run_lines(effective, options, config, estimate, prices):  # --judge / judge:
        console.print(escape(line))
    folder = output_folder(effective, options)
    # a fleet's identity names no server (fountain.providers.fleet): the run resumes as servers change
    base_url = "fleet" if config.base_urls else config.base_url
    identity = {"provider": config.provider, "model": config.model, "base_url": base_url}
    decision = check_resume(folder, spec, options.export.resume, provider=identity)
    if decision.resuming:
        console.print(
            f"output: would resume the run in {escape(str(folder))} (answers already "
            "in the cache are not requested or paid again)"
        )
    else:
        console.print(f"output: would start a new run in {escape(str(folder))}")
