"""The rows of a report's diversity table (all conversations, then by kind and by direction),
shared by the terminal and the HTML view; each view escapes and lays them out its own way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fountain.report.build import format_pct

#: The metric of each column after the group, and whether it is shown as a percentage.
CELLS = (
    ("conversations", False),
    ("distinct_1", False),
    ("distinct_2", False),
    ("distinct_3", False),
    ("self_bleu", False),
    ("exact_duplicate_rate", True),
    ("minhash_duplicate_rate", True),
    ("mean_pairwise_distance", False),
)


def diversity_rows(
    diversity: dict[str, Any], *, label: Callable[[str], str], number: Callable[[Any], str]
) -> list[list[str]]:
    """One row per group: its label (through ``label``, the view's escaping), then each metric of
    :data:`CELLS` (numbers through ``number``, rates as percentages)."""
    groups = [("all", diversity["overall"])]
    groups += [
        (f"{key[3:]}: {name}", metrics)
        for key in ("by_kind", "by_direction")
        for name, metrics in (diversity.get(key) or {}).items()
    ]
    return [
        [label(group), *(format_pct(m[key]) if rate else number(m[key]) for key, rate in CELLS)] for group, m in groups
    ]
