"""`fountain evaluate`: fine-tune a small model on a dataset and report held-out loss before and after."""

from __future__ import annotations

import json
import math

import click

from fountain.cli.app import _console, cli


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else "n/a"


@cli.command("evaluate")
@click.argument("output", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "--model",
    help="A .gguf file, a transformers model folder, or a Hub id when online (default: the bundled SmolLM2-135M).",
)
@click.option("--lora", is_flag=True, help="Train a LoRA adapter (peft) instead of every weight.")
@click.option("--steps", type=click.IntRange(min=1), default=30, show_default=True, help="Training steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Conversations per step.")
@click.option(
    "--max-length", type=click.IntRange(min=16), default=256, show_default=True, help="Tokens per conversation at most."
)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Default 5e-5 (2e-4 with --lora).")
@click.option(
    "--test-size",
    type=click.FloatRange(min=0, min_open=True),
    default=0.1,
    show_default=True,
    help="Test share (or count) when OUTPUT is an output folder; a published folder keeps its splits.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and the training.")
@click.option(
    "--real-data",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Held-out real conversations: is the model closer to them after training on the synthetic data?",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout (nothing else).")
@click.option("--no-plot", is_flag=True, help="Do not draw evaluation_loss.png.")
def evaluate_command(
    output: str,
    model: str | None,
    lora: bool,
    steps: int,
    batch_size: int,
    max_length: int,
    learning_rate: float | None,
    test_size: float,
    seed: int,
    real_data: str | None,
    as_json: bool,
    no_plot: bool,
) -> None:
    """Fine-tune a small causal LM on OUTPUT's train split (assistant tokens only, TRL's SFTTrainer)
    and report the loss and perplexity on the test split before and after.

    OUTPUT is an output folder of `fountain run` or a folder `fountain publish` wrote. Results go
    to OUTPUT/evaluation.json (and evaluation_loss.png); `fountain report --html` shows them.
    """
    from fountain.evaluate.runner import EvaluateOptions, evaluate

    status = _console(stderr=True)
    options = EvaluateOptions(
        model=model,
        steps=steps,
        batch_size=batch_size,
        max_length=max_length,
        learning_rate=learning_rate,
        lora=lora,
        test_size=test_size,
        seed=seed,
        real_data=real_data,
        plot=not no_plot,
    )
    result = evaluate(output, options, say=lambda text: status.print(f"[dim]evaluate: {text}[/]"))
    data = result.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console = _console()
    console.print(
        f"{result.model} on {result.device}, {steps} steps: trained on {result.train_conversations}, "
        f"measured on {result.test_conversations} held-out conversations"
    )
    for name in ("test", "real"):
        before, after = result.before.get(name), result.after.get(name)
        if not before or not after:
            continue
        console.print(
            f"  {name}: loss {_fmt(before['loss'])} -> {_fmt(after['loss'])}, "
            f"perplexity {_fmt(before['perplexity'])} -> {_fmt(after['perplexity'])}"
        )
    console.print(f"  written to {output}/evaluation.json")
