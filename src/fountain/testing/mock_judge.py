"""The mock server's answers to fountain's judge (:mod:`fountain.raters.judge`), in each API's
shape: OpenAI chat completions, Anthropic messages (the verdict as the forced tool's input),
Gemini generateContent.

A judge request is recognised by its schema (titled ``fountain_judgement``: OpenAI's
``response_format``, the Anthropic tool's ``input_schema``, Gemini's ``responseJsonSchema`` /
``responseSchema``) or, when no schema is sent (``structured_output: json_object``/``none``), by
the judge's system message; its criteria come from the schema, else from the prompt's rubric
lines. The verdict is the fake provider's (:mod:`fountain.providers.fake_judge`): hashed scores,
or the scores pinned by the ``judge_scores`` option; ``judge_malformed: N`` answers the next N
judge requests in prose (a malformed verdict), as a weak model would.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from fountain.providers.fake_judge import SCHEMA_TITLE, judge_answer
from fountain.testing.mock_answers import _text_of, anthropic_envelope, openai_envelope

MARKER = "You are fountain's judge"  # fountain.raters.judge.MARKER
_RUBRIC_LINE = re.compile(r"^- ([a-z][a-z0-9_]*): ", re.M)
MALFORMED = "I think this conversation is quite good overall, maybe a four."


def _openai_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else fmt.get("schema")
    return schema if isinstance(schema, dict) else None


def _anthropic_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the request forces (its input is the answer), or None."""
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "tool":
        return None
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
            return tool
    return None


def _schema(api: str, body: dict[str, Any]) -> dict[str, Any] | None:
    if api == "anthropic":
        tool = _anthropic_tool(body)
        schema = tool.get("input_schema") if tool else None
    elif api == "gemini":
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
    else:
        schema = _openai_schema(body)
    return schema if isinstance(schema, dict) else None


def _prompt(api: str, body: dict[str, Any]) -> str:
    if api == "anthropic":
        texts = [_text_of(body.get("system"))] + [_text_of(m.get("content")) for m in body.get("messages", [])]
    elif api == "gemini":
        texts = [_text_of((body.get("systemInstruction") or {}).get("parts"))]
        texts += [_text_of(c.get("parts")) for c in body.get("contents", []) if isinstance(c, dict)]
    else:
        texts = [_text_of(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict)]
    return "\n".join(texts)


def judge_reply(body: dict[str, Any], options: Any, api: str = "openai") -> str | None:
    """The judge's answer text to ``body`` sent to ``api`` ("openai", "anthropic", "gemini"), or
    None when it is not a judge request."""
    schema = _schema(api, body)
    prompt = _prompt(api, body)
    titled = schema is not None and schema.get("title") == SCHEMA_TITLE
    if not titled and MARKER not in prompt:
        return None
    if options.judge_malformed > 0:
        options.judge_malformed -= 1
        return MALFORMED
    if not titled:
        rubric = prompt.rsplit("Rubric", 1)[-1]
        names = list(dict.fromkeys(_RUBRIC_LINE.findall(rubric)))
        schema = {"properties": {"scores": {"properties": {name: {} for name in names}}}}
    assert schema is not None
    return judge_answer(schema, prompt, options.judge_scores)


def judge_envelope(
    api: str, body: dict[str, Any], text: str, model: str, rng: random.Random, size: int
) -> dict[str, Any]:
    """The response body of ``api`` carrying the judge's answer ``text``: an OpenAI
    chat.completion, an Anthropic message (a ``tool_use`` block when a tool is forced and the text
    is a JSON object, as Claude answers; else a text block), a Gemini candidate."""
    out_tokens = len(text) // 4
    if api == "anthropic":
        tool = _anthropic_tool(body)
        data = _json_object(text) if tool is not None else None
        if tool is not None and data is not None:
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": f"toolu_{rng.randrange(1 << 48):012x}", "name": tool["name"], "input": data}
            ]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": text}], "end_turn"
        return anthropic_envelope(content, stop, model, rng, size, out_tokens)
    if api == "gemini":
        return {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": size // 4,
                "candidatesTokenCount": out_tokens,
                "totalTokenCount": size // 4 + out_tokens,
            },
            "modelVersion": model,
        }
    return openai_envelope(text, model, rng, size)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
