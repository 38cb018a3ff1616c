"""Prompt templates of plain text, ``{{ variable }}`` and ``{% if variable %}...{% endif %}``:
rendered without Jinja.

Most specs' prompts use nothing more of Jinja. For those, importing Jinja and compiling the
template (a good part of ``fountain run``'s start-up) buys nothing: this renders what the
sandboxed environment of :mod:`fountain.spec.prompts` renders (no autoescape, trailing newline
kept; ``trim_blocks``: a newline right after a block tag goes; ``lstrip_blocks``: the spaces
before a block tag that starts a line go). :func:`simple_template` says whether a template is of
that kind; anything else (a filter, ``else``, nesting, a comment, whitespace control, a name that
is not a template variable, a carriage return, text touching a tag's braces, a case whose
whitespace rule is not plain) goes to Jinja, as does a render whose output would come near the
sandbox's output limit.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"
_TAG = re.compile(rf"\{{\{{\s*{_NAME}\s*\}}\}}|\{{%\s*if\s+{_NAME}\s*%\}}\n?|\{{%\s*endif\s*%\}}\n?")
_MARKERS = ("{{", "{%", "{#")
# Well under fountain.spec.sandbox.MAX_OUTPUT_CHARS: a longer output is rendered (and refused) by Jinja.
MAX_SIMPLE_OUTPUT_CHARS = 1_000_000

# ("text", s) | ("var", name) | ("if", name) | ("endif", "")
Piece = tuple[str, str]


def _lstrip(text: str, first: bool, after_newline: bool) -> str | None:
    """``text`` before a block tag with Jinja's lstrip_blocks applied; None when unsure."""
    start = text.rfind("\n") + 1
    tail = text[start:]
    if not tail or not tail.isspace():
        return text
    if start > 0:
        return text[:start]
    return text[:0] if first or after_newline else None


@lru_cache(maxsize=256)
def simple_template(source: str, names: Collection[str]) -> tuple[Piece, ...] | None:
    """The pieces of a template of the kind described above (every name in ``names``), or None."""
    if "\r" in source:
        return None  # Jinja normalises line breaks
    pieces: list[Piece] = []
    position, depth, after_newline = 0, 0, False
    for match in _TAG.finditer(source):
        text = source[position : match.start()]
        variable, condition = match.group(1), match.group(2)
        is_block = variable is None
        if is_block:
            stripped = _lstrip(text, position == 0, after_newline)
            if stripped is None:
                return None
            text = stripped
        if any(marker in text for marker in _MARKERS) or text.endswith("{") or (pieces and text.startswith("}")):
            return None
        if text:
            pieces.append(("text", text))
        if variable is not None:
            if variable not in names:
                return None  # Jinja's constants (true, none...) and its error for an unknown name
            pieces.append(("var", variable))
        elif condition is not None:
            if condition not in names or depth:
                return None
            depth += 1
            pieces.append(("if", condition))
        else:
            if not depth:
                return None
            depth -= 1
            pieces.append(("endif", ""))
        after_newline = is_block and match.group(0).endswith("\n")
        position = match.end()
    text = source[position:]
    if depth or any(marker in text for marker in _MARKERS) or (pieces and text.startswith("}")):
        return None
    if text:
        pieces.append(("text", text))
    return tuple(pieces)


def variables_of(pieces: tuple[Piece, ...]) -> frozenset[str]:
    """The names a simple template reads."""
    return frozenset(value for kind, value in pieces if kind in ("var", "if"))


def render_simple(pieces: tuple[Piece, ...], variables: Mapping[str, Any]) -> str | None:
    """The rendered text, or None when it would be too long for this path."""
    parts: list[str] = []
    skipping = False
    for kind, value in pieces:
        if kind == "if":
            skipping = not variables[value]
        elif kind == "endif":
            skipping = False
        elif not skipping:
            parts.append(value if kind == "text" else str(variables[value]))
    out = "".join(parts)
    return out if len(out) <= MAX_SIMPLE_OUTPUT_CHARS else None
