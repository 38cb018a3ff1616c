"""The mock server's answers to fountain's judge (:mod:`fountain.raters.judge`), OpenAI API.

A judge request is recognised by its ``response_format`` schema (titled ``fountain_judgement``)
or, when no schema is sent (``structured_output: json_object``/``none``), by the judge's system
message; its criteria come from the schema, else from the prompt's rubric lines. The verdict is
the fake provider's (:mod:`fountain.providers.fake_judge`): hashed scores, or the scores pinned by
the ``judge_scores`` option; ``judge_malformed: N`` answers the next N judge requests in prose
(a malformed verdict), as a weak model would.
"""

from __future__ import annotations

import re
from typing import Any

from fountain.providers.fake_judge import SCHEMA_TITLE, judge_answer
from fountain.testing.mock_answers import _text_of

MARKER = "You are fountain's judge"  # fountain.raters.judge.MARKER
_RUBRIC_LINE = re.compile(r"^- ([a-z][a-z0-9_]*): ", re.M)


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else fmt.get("schema")
    return schema if isinstance(schema, dict) else None


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(_text_of(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))


def judge_reply(body: dict[str, Any], options: Any) -> str | None:
    """The judge's answer text to ``body``, or None when it is not a judge request."""
    schema = _schema(body)
    prompt = _prompt(body)
    if not (schema is not None and schema.get("title") == SCHEMA_TITLE) and MARKER not in prompt:
        return None
    if options.judge_malformed > 0:
        options.judge_malformed -= 1
        return "I think this conversation is quite good overall, maybe a four."
    if schema is None or schema.get("title") != SCHEMA_TITLE:
        rubric = prompt.rsplit("Rubric", 1)[-1]
        names = list(dict.fromkeys(_RUBRIC_LINE.findall(rubric)))
        schema = {"properties": {"scores": {"properties": {name: {} for name in names}}}}
    return judge_answer(schema, prompt, options.judge_scores)
