"""fountain evaluate with a tiny randomly initialised Llama (SmolLM2's architecture): the chat
template, the assistant-only mask, TRL's SFTTrainer lowering the held-out loss, the results file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("transformers")

from evaluate_helpers import tiny_model, tiny_tokenizer  # noqa: E402
from fountain.evaluate.chat import CHAT_TEMPLATE, encode  # noqa: E402

FIXTURE = Path(__file__).parent.parent / "fixtures" / "report" / "spec"
CHAT = [
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "good morning", "weight": 0},
    {"role": "user", "content": "water the tomatoes"},
    {"role": "assistant", "content": "every morning at the base"},
]


@pytest.fixture
def output(tmp_path):
    spec = tmp_path / "spec"
    shutil.copytree(FIXTURE, spec)
    return spec / "output"


def _texts(folder: Path) -> list[str]:
    texts = [m["content"] for c in CHAT for m in [c]]
    for line in (folder / "dataset.jsonl").read_text().splitlines():
        texts += [m["content"] for m in json.loads(line)["messages"]]
    return texts


@pytest.fixture
def tokenizer(output):
    tok = tiny_tokenizer(_texts(output))
    tok.chat_template = CHAT_TEMPLATE
    return tok


def test_template_injects_no_system_prompt_and_marks_turns_with_chatml(tokenizer):
    text = tokenizer.apply_chat_template(CHAT[:2], tokenize=False)
    assert text.startswith("<|im_start|>user\nhello there<|im_end|>\n")
    assert "SmolLM" not in text and "system" not in text
    with_system = tokenizer.apply_chat_template([{"role": "system", "content": "be brief"}, *CHAT[:2]], tokenize=False)
    assert with_system.startswith("<|im_start|>system\nbe brief<|im_end|>\n")


def test_only_trained_assistant_tokens_are_in_the_loss(tokenizer):
    ids, mask = encode(tokenizer, CHAT, 200)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    learned = [t for t, m in zip(tokens, mask) if m]
    # the weight-0 answer stays in the context, out of the loss; the last answer and its end are in
    assert learned == ["every", "morning", "at", "the", "base", "<|im_end|>"]
    assert "good" in tokens
    unweighted = [dict(m, weight=1) if m["role"] == "assistant" else m for m in CHAT]
    _, mask_all = encode(tokenizer, unweighted, 200)
    assert sum(mask_all) == len(learned) + 3  # "good morning" and its end token join the loss


def test_fine_tuning_the_tiny_model_lowers_held_out_loss_and_writes_results(output, tokenizer):
    from fountain.evaluate.runner import EvaluateOptions, evaluate

    model = tiny_model(len(tokenizer))
    messages: list[str] = []
    result = evaluate(
        output,
        EvaluateOptions(steps=5, batch_size=2, learning_rate=3e-3, test_size=0.25, max_length=128),
        model=model,
        tokenizer=tokenizer,
        say=messages.append,
    )
    assert result.before["test"]["tokens"] > 0
    assert result.after["test"]["loss"] < result.before["test"]["loss"]
    assert len(result.curve) == 5 and result.curve[-1]["loss"] < result.curve[0]["loss"] + 0.5
    assert any("roughly" in m and "s (estimated" in m for m in messages)
    assert any(m.startswith("step 5/5") for m in messages)
    saved = json.loads((output / "evaluation.json").read_text())
    assert saved["train_conversations"] + saved["test_conversations"] <= 8
    assert saved["change"]["test"]["loss"] < 0
    assert saved["options"]["steps"] == 5
    if pytest.importorskip("matplotlib"):
        assert (output / "evaluation_loss.png").stat().st_size > 1000


def test_a_folder_too_small_to_split_is_a_clear_error(tmp_path, capsys):
    from spec_helpers import run_cli

    folder = tmp_path / "out"
    folder.mkdir()
    line = (FIXTURE / "output" / "dataset.jsonl").read_text().splitlines()[0]
    (folder / "dataset.jsonl").write_text(line + "\n")
    code, text = run_cli(["evaluate", str(folder)], capsys)
    assert code == 1 and "no test conversations" in text and "Traceback" not in text


def test_report_html_shows_the_evaluation_when_one_exists(output, tmp_path, capsys):
    from spec_helpers import run_cli

    html = tmp_path / "report.html"
    assert run_cli(["report", str(output), "--no-embed", "--html", str(html)], capsys)[0] == 0
    assert "Fine-tuning check" not in html.read_text()
    result = {
        "model": "tiny",
        "device": "cpu",
        "options": {"steps": 5, "batch_size": 2, "max_length": 128, "lora": False},
        "train_conversations": 6,
        "before": {"test": {"loss": 5.5, "perplexity": 244.7, "tokens": 300}},
        "after": {"test": {"loss": 4.25, "perplexity": 70.1, "tokens": 300}},
    }
    (output / "evaluation.json").write_text(json.dumps(result))
    assert run_cli(["report", str(output), "--no-embed", "--html", str(html)], capsys)[0] == 0
    page = html.read_text()
    assert "Fine-tuning check" in page and "<td>5.5</td>" in page and "<td>4.25</td>" in page


def test_a_missing_training_stack_names_the_extra(monkeypatch):
    import sys

    from fountain.errors import MissingDependencyError
    from fountain.evaluate.model import load_model

    monkeypatch.setitem(sys.modules, "trl", None)  # import trl now raises ImportError
    with pytest.raises(MissingDependencyError) as info:
        load_model(None)
    assert "trl" in info.value.message and "fountain[evaluate]" in str(info.value.hint)
