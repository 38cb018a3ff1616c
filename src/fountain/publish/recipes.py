"""Ready-to-use training configs written beside the data: a LLaMA-Factory ``dataset_info.json``
entry and an Axolotl ``datasets:`` block, both pointing at the split files."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from fountain.publish.card import SPLIT_FILES


def dataset_name(title: str) -> str:
    """A LLaMA-Factory dataset name from a title: lower case, words joined by ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "fountain_dataset"


def llamafactory_info(name: str, fmt: str, splits: list[str]) -> dict[str, Any]:
    """``dataset_info.json``: one entry per split (``NAME`` is train, ``NAME_test`` the test
    split), in LLaMA-Factory's ShareGPT layout with OpenAI-style role tags."""
    if fmt == "messages":
        columns = {"messages": "messages"}
        tags = {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        }
    else:
        columns = {"messages": "conversations"}
        tags = {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "system_tag": "system",
        }
    info = {}
    for split in splits:
        key = name if split == "train" else f"{name}_{split}"
        info[key] = {"file_name": SPLIT_FILES[split], "formatting": "sharegpt", "columns": columns, "tags": tags}
    return info


def axolotl_config(path: str, fmt: str, *, weighted: bool, splits: list[str]) -> str:
    """An Axolotl config fragment (``datasets`` and ``test_datasets``) for the split files;
    ``path`` is the folder or the Hub repo id."""
    field, role, content = ("messages", "role", "content") if fmt == "messages" else ("conversations", "from", "value")

    def block(split: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": path,
            "data_files": [SPLIT_FILES[split]],
            "split": "train",
            "type": "chat_template",
            "field_messages": field,
            "message_property_mappings": {"role": role, "content": content},
            "roles_to_train": ["assistant"],
        }
        if fmt != "messages":
            entry["roles"] = {"user": ["human"], "assistant": ["gpt"], "system": ["system"]}
        if weighted:
            entry["message_field_training"] = "weight"  # 0: a derivation's repeated prefix
        return entry

    config: dict[str, Any] = {"datasets": [block("train")]}
    if "test" in splits:
        config["test_datasets"] = [block("test")]
    head = "# Axolotl dataset settings for this dataset (merge into your config); written by fountain publish\n"
    return head + yaml.safe_dump(config, sort_keys=False)


def llamafactory_json(name: str, fmt: str, splits: list[str]) -> str:
    return json.dumps(llamafactory_info(name, fmt, splits), indent=2) + "\n"
