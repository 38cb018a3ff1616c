"""The chat template a fine-tune trains with, and the held-out loss it is measured by.

The template is ChatML (what SmolLM2 was trained on) with two changes: assistant turns are wrapped
in ``{% generation %}`` markers, so TRL's ``assistant_only_loss`` and
``return_assistant_tokens_mask`` know which tokens to learn, and no system prompt is injected
when the conversation has none (SmolLM2's own template adds "You are a helpful AI assistant named
SmolLM"). An assistant message with ``weight: 0`` (a derivation's repeated prefix, written with
``--prefix-loss mask``) stays in the context but out of the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\n' -}}"
    "{%- if message['weight'] is defined and message['weight'] is not none and message['weight'] == 0 -%}"
    "{{- message['content'] + '<|im_end|>' -}}"
    "{%- else -%}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{%- endif -%}"
    "{{- '\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)
SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>")


def clean_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``role`` and ``content`` of each message, plus ``weight`` where it is set."""
    out = []
    for message in messages:
        item: dict[str, Any] = {"role": str(message["role"]), "content": str(message["content"])}
        if message.get("weight") is not None:
            item["weight"] = int(message["weight"])
        out.append(item)
    return out


def encode(tokenizer: Any, messages: Sequence[dict[str, Any]], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and its assistant mask (1: in the loss), cut at ``max_length``."""
    encoded = tokenizer.apply_chat_template(
        clean_messages(messages),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        chat_template=CHAT_TEMPLATE,
    )
    ids = list(encoded["input_ids"])[:max_length]
    mask = list(encoded["assistant_masks"])[:max_length]
    return ids, mask


def heldout_loss(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    *,
    max_length: int,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Mean cross-entropy per assistant token over ``conversations`` (the tokens the fine-tune
    learns), and its perplexity. Conversations with no assistant token inside ``max_length``
    are counted in ``skipped``."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = []
    skipped = 0
    for messages in conversations:
        ids, mask = encode(tokenizer, messages, max_length)
        if sum(mask[1:]) == 0:
            skipped += 1
            continue
        rows.append((ids, mask))
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (ids, mask) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                labels[row, : len(ids)] = torch.tensor([t if m else -100 for t, m in zip(ids, mask)])
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
            shifted = logits[:, :-1].reshape(-1, logits.shape[-1])
            target = labels[:, 1:].reshape(-1).to(device)
            loss = torch.nn.functional.cross_entropy(shifted, target, ignore_index=-100, reduction="sum")
            total += float(loss)
            tokens += int((target != -100).sum())
    if was_training:
        model.train()
    mean = total / tokens if tokens else float("nan")
    return {
        "loss": mean,
        "perplexity": math.exp(mean) if tokens and mean < 50 else float("inf") if tokens else float("nan"),
        "tokens": tokens,
        "conversations": len(rows),
        "skipped": skipped,
    }
