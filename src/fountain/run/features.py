"""The declared column types of a dataset record, in the form a Hugging Face dataset card's
``dataset_info.features`` takes, so ``datasets`` (and the Hub's viewer) read every file with the
same types instead of guessing them from the first rows.

Kept by hand beside ``schemas/sft_record.schema.json`` (a test checks they agree) and free of any
import of ``datasets``: a card can be written without the library installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# (name, dtype) of the metadata struct, in the order Sample.to_record writes them.
METADATA_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("kind", "string"),
    ("direction", "string"),
    ("category", "string"),
    ("type", "string"),
    ("parent_id", "string"),
    ("prefix_turns", "int64"),
    ("provider", "string"),
    ("model", "string"),
    ("prompt_hash", "string"),
    ("usage", "usage"),
    ("spec_fingerprint", "string"),
    ("persona", "string"),
    ("iteration", "int64"),
    ("attempt", "int64"),
)
# Written only by some runs: ``judge`` (fountain run --judge), a struct whose scores are the rubric's criteria.
OPTIONAL_METADATA = ("judge",)
_USAGE = [{"name": "prompt_tokens", "dtype": "int64"}, {"name": "completion_tokens", "dtype": "int64"}]


def _judge(criteria: Sequence[str]) -> dict[str, Any]:
    """The ``metadata.judge`` struct of a judged run (fountain.raters.judge.Verdict.metadata)."""
    scores = [{"name": name, "dtype": "int64"} for name in criteria]
    fields = (("overall", "float64"), ("reason", "string"), ("threshold", "int64"), ("judge", "string"))
    rest = [{"name": name, "dtype": dtype} for name, dtype in (*fields, ("rubric", "string"))]
    return {"name": "judge", "struct": [{"name": "scores", "struct": scores}, *rest]}


def _metadata(judge: Sequence[str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, dtype in METADATA_FIELDS:
        out.append({"name": name, "struct": list(_USAGE)} if dtype == "usage" else {"name": name, "dtype": dtype})
    if judge:
        out.append(_judge(judge))
    return out


def record_features(
    fmt: str = "messages", *, weighted: bool = False, judge: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """``dataset_info.features`` (card YAML) of a ``messages`` or ``sharegpt`` record; with
    ``weighted`` the messages carry ``weight`` (``--prefix-loss mask``); with ``judge`` (the
    rubric's criteria) the metadata carries the judge's verdict."""
    if fmt == "sharegpt":
        column, message = "conversations", [{"name": "from", "dtype": "string"}, {"name": "value", "dtype": "string"}]
    else:
        column, message = "messages", [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]
    if weighted:
        message.append({"name": "weight", "dtype": "int64"})
    return [{"name": column, "list": message}, {"name": "metadata", "struct": _metadata(judge)}]


def datasets_features(fmt: str = "messages", *, weighted: bool = False, judge: Sequence[str] | None = None) -> Any:
    """The same as a ``datasets.Features`` (needs the ``datasets`` package)."""
    from fountain.errors import MissingDependencyError

    try:
        from datasets import Features
    except ImportError:
        raise MissingDependencyError(
            "reading a dataset with declared features needs the 'datasets' package",
            hint="pip install 'fountain[publish]'",
        ) from None
    return Features._from_yaml_list(record_features(fmt, weighted=weighted, judge=judge))
