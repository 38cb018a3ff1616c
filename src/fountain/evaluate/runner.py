"""``evaluate(output)``: measure held-out loss, fine-tune with TRL's ``SFTTrainer`` on the train
split (assistant tokens only), measure again; write ``evaluation.json`` and a loss curve."""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fountain.evaluate.chat import heldout_loss
from fountain.evaluate.data import Messages, load_real_messages, load_splits
from fountain.evaluate.model import load_model
from fountain.run.atomic import write_text_atomic

RESULT_FILE, CURVE_FILE = "evaluation.json", "evaluation_loss.png"
STEP_COST = 8  # forward passes one training step costs, per conversation (rough; see evaluate())


@dataclass
class EvaluateOptions:
    """How to fine-tune and measure (defaults: a quick CPU check)."""

    model: str | None = None  # None: the bundled SmolLM2-135M-Instruct
    steps: int = 30
    batch_size: int = 1
    max_length: int = 256
    learning_rate: float | None = None  # default: 5e-5, or 2e-4 with LoRA
    lora: bool = False
    test_size: float = 0.1
    seed: int = 0
    real_data: str | None = None
    max_eval: int = 200  # held-out conversations measured at most (each set)
    plot: bool = True


@dataclass
class Evaluation:
    """What ``evaluation.json`` holds."""

    model: str
    device: str
    options: dict[str, Any]
    train_conversations: int
    test_conversations: int
    source: str
    before: dict[str, Any]
    after: dict[str, Any]
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    estimate_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["change"] = {
            key: _delta(self.before.get(key), self.after.get(key)) for key in ("test", "real") if self.before.get(key)
        }
        return _finite(data)


def _delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, float | None]:
    if not before or not after:
        return {}
    b, a = before.get("loss"), after.get("loss")
    if not (isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b)):
        return {"loss": None, "relative": None}
    return {"loss": a - b, "relative": (a - b) / b if b else None}


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _measure(model: Any, tokenizer: Any, sets: dict[str, list[Messages]], options: EvaluateOptions) -> dict[str, Any]:
    return {
        name: heldout_loss(model, tokenizer, conversations[: options.max_eval], max_length=options.max_length)
        for name, conversations in sets.items()
    }


def _callback(steps: int, say: Callable[[str], None], curve: list[dict[str, float]]) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        started = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not logs or "loss" not in logs:
                return
            curve.append({"step": float(state.global_step), "loss": float(logs["loss"])})
            elapsed = time.monotonic() - self.started
            left = elapsed / max(state.global_step, 1) * (steps - state.global_step)
            say(f"step {state.global_step}/{steps}: loss {logs['loss']:.3f} ({elapsed:.0f} s, ~{left:.0f} s left)")

    return Progress()


def train(model: Any, tokenizer: Any, train_set: list[Messages], options: EvaluateOptions, callback: Any) -> Any:
    """Fine-tune ``model`` in place (or its LoRA adapter) with SFTTrainer; returns the trained model."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from fountain.evaluate.chat import clean_messages

    lr = options.learning_rate or (2e-4 if options.lora else 5e-5)
    device = _device()
    with tempfile.TemporaryDirectory(prefix="fountain-evaluate-") as scratch:
        config = SFTConfig(
            output_dir=scratch,
            max_steps=options.steps,
            per_device_train_batch_size=options.batch_size,
            learning_rate=lr,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            assistant_only_loss=True,
            max_length=options.max_length,
            seed=options.seed,
            use_cpu=device == "cpu",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        peft_config = None
        if options.lora:
            try:
                from peft import LoraConfig
            except ImportError:
                from fountain.errors import MissingDependencyError

                raise MissingDependencyError("--lora needs the 'peft' package", hint="pip install peft") from None
            peft_config = LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
            )
        dataset = Dataset.from_list([{"messages": clean_messages(m)} for m in train_set])
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[callback],
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # progress is ours (the callback above)
        trainer.train()
        return trainer.model


def plot_curve(path: Path, evaluation: Evaluation) -> Path | None:
    """The training loss per step and the test loss before and after, as a PNG (None without
    matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.5))
    if evaluation.curve:
        axis.plot([p["step"] for p in evaluation.curve], [p["loss"] for p in evaluation.curve], label="train loss")
    for label, data, style in (("test before", evaluation.before, ":"), ("test after", evaluation.after, "--")):
        loss = (data.get("test") or {}).get("loss")
        if isinstance(loss, float) and math.isfinite(loss):
            axis.axhline(
                loss, linestyle=style, color="gray" if style == ":" else "black", label=f"{label} ({loss:.3f})"
            )
    axis.set_xlabel("step")
    axis.set_ylabel("loss per assistant token")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def evaluate(
    output: str | Path,
    options: EvaluateOptions | None = None,
    *,
    model: Any = None,
    tokenizer: Any = None,
    say: Callable[[str], None] | None = None,
) -> Evaluation:
    """Fine-tune on ``output``'s train split and measure held-out loss before and after; writes
    ``evaluation.json`` (and ``evaluation_loss.png``) into ``output``. ``model``/``tokenizer``
    replace ``options.model`` (tests pass a tiny model)."""
    options = options or EvaluateOptions()
    say = say or (lambda text: None)
    clock = time.monotonic()
    splits = load_splits(output, test_size=options.test_size, seed=options.seed)
    sets: dict[str, list[Messages]] = {"test": splits.test}
    if options.real_data:
        sets["real"] = load_real_messages(options.real_data)
    if model is None:
        say("loading the model (the bundled one is converted from GGUF once, then cached)")
        model, tokenizer, name = load_model(options.model)
    else:
        from fountain.evaluate.model import prepare_tokenizer

        tokenizer, name = prepare_tokenizer(tokenizer, model), type(model).__name__
    device = _device()
    model.to(device)
    seconds = {"load": time.monotonic() - clock}
    clock = time.monotonic()
    before = _measure(model, tokenizer, sets, options)
    seconds["measure_before"] = time.monotonic() - clock
    # A training step costs several forward passes per conversation: forward and backward (about
    # three) plus the optimiser and the trainer's own work; measured 2.8x-3.2x the forward-only
    # time per step on CPU (bundled 135M and the tiny test model), so 8 is a fair rough factor.
    measured = sum(r["conversations"] for r in before.values()) or 1
    estimate = seconds["measure_before"] / measured * STEP_COST * options.batch_size * options.steps
    say(
        f"training {options.steps} steps of {options.batch_size} on {len(splits.train)} conversations "
        f"on {device}: roughly {estimate:.0f} s (estimated from the held-out pass)"
    )
    curve: list[dict[str, float]] = []
    clock = time.monotonic()
    trained = train(model, tokenizer, splits.train, options, _callback(options.steps, say, curve))
    seconds["train"] = time.monotonic() - clock
    clock = time.monotonic()
    after = _measure(trained, tokenizer, sets, options)
    seconds["measure_after"] = time.monotonic() - clock
    result = Evaluation(
        model=name,
        device=device,
        options={k: v for k, v in asdict(options).items() if k not in ("plot",)},
        train_conversations=len(splits.train),
        test_conversations=len(splits.test),
        source=splits.source,
        before=before,
        after=after,
        curve=curve,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        estimate_s=round(estimate, 1),
    )
    folder = Path(output)
    write_text_atomic(folder / RESULT_FILE, json.dumps(result.to_dict(), indent=2) + "\n")
    if options.plot:
        plot_curve(folder / CURVE_FILE, result)
    return result
