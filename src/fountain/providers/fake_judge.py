"""The fake provider's answer to a judge request (:mod:`fountain.raters.judge`): a verdict in the
request's schema, deterministic and controllable.

- By default each criterion's score comes from a hash of the prompt and the criterion's name:
  5, 4 or 3 most of the time and 2 one time in ten, so a run with ``--judge fake`` and the default
  threshold (3) accepts most conversations and rejects a few, always the same ones.
- ``scores`` (the fake's ``config.extra["judge_scores"]``: criterion -> score, ``"*"`` for every
  criterion) pins the scores; a score that is a text is answered as it is (a malformed verdict).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SCHEMA_TITLE = "fountain_judgement"  # fountain.raters.judge.SCHEMA_TITLE (a layer above: not imported)
_SCALE = {0: 2, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4, 6: 4, 7: 5, 8: 5, 9: 5}


def is_judgement(schema: dict[str, Any] | None) -> bool:
    """Whether a request's schema is the judge's verdict."""
    return isinstance(schema, dict) and schema.get("title") == SCHEMA_TITLE


def criteria_of(schema: dict[str, Any]) -> list[str]:
    scores = (schema.get("properties") or {}).get("scores") or {}
    return [str(name) for name in (scores.get("properties") or {})]


def judge_answer(schema: dict[str, Any], prompt: str, scores: Mapping[str, Any] | None = None) -> str:
    """The verdict's JSON text for a judge request with ``schema`` and ``prompt``."""
    pinned = dict(scores or {})
    if isinstance(pinned.get("raw"), str):
        return str(pinned["raw"])  # a scripted answer as it is (malformed-verdict tests)
    out: dict[str, Any] = {}
    for name in criteria_of(schema):
        if name in pinned or "*" in pinned:
            out[name] = pinned.get(name, pinned.get("*"))
            continue
        digest = hashlib.sha256(f"{name}\n{prompt}".encode()).digest()
        out[name] = _SCALE[digest[0] % 10]
    numeric = {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numeric:
        worst = min(numeric, key=lambda k: numeric[k])
        reason = f"fake judge: {worst} is the weakest point ({numeric[worst]})."
    else:
        reason = "fake judge."
    return json.dumps({"scores": out, "reason": reason}, ensure_ascii=False)
