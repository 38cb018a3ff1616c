"""JSON encoding on the per-request path (request bodies, cache rows, journal lines).

orjson encodes these objects 10 to 30 times faster than the standard library; at a few thousand
requests a second on one event-loop thread that is a measurable share of fountain's CPU per
request. Where orjson refuses a value the standard library takes (an integer beyond 64 bits, a
string holding a lone surrogate, which a model can send as ``"\\ud800"``, a non-string key), the
standard library writes it instead, so every value still gets valid JSON.

Output is compact (no spaces after ``,`` and ``:``), UTF-8, not ASCII-escaped, keys in insertion
order: the same object always gives the same bytes.

:func:`loads` parses a provider's answer with orjson too, and hands what orjson refuses (NaN, a
lone surrogate, a number beyond a double) to ``json.loads``, so it accepts exactly what
``json.loads`` accepts. One difference is kept on purpose: an integer beyond 64 bits becomes a
float. Answers are conversations of strings, where such a number is a schema error either way;
journals, manifests and caches that must keep every integer exact are read with ``json.loads``.
JSON nested deeper than the interpreter's recursion limit raises ``ValueError`` (not
``RecursionError``), like any other text that cannot be parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; a broken install still works
    orjson = None  # type: ignore[assignment]

_UTF8 = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value`` (dicts, lists, tuples, str, int, float, bool, None)."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    try:
        return _UTF8.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escaped, it parses back to the same string
        return _ASCII.encode(value).encode("ascii")


def loads(data: bytes | str) -> Any:
    """Parse JSON text (bytes or str) as ``json.loads`` does, faster; raises ``ValueError``."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json.loads decides: it takes a few things orjson does not, or words the error
    try:
        return json.loads(data)
    except RecursionError:  # nesting deeper than the interpreter's stack: a value, not a crash
        raise ValueError("JSON nests too deeply to parse") from None


def dumps(value: Any) -> str:
    """:func:`dumps_bytes` as text."""
    return dumps_bytes(value).decode("utf-8")


# 19 digits in a row: an integer JSON may hold that orjson reads as a float (2**63 has 19 digits;
# every integer of 18 digits or fewer fits in 64 bits). Digits inside strings count too, which only
# sends a few more lines to ``json.loads``.
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")
_LONG_DIGITS = re.compile(r"\d{19}")


def loads_exact(data: bytes | str) -> Any:
    """Parse JSON exactly as ``json.loads`` does (every integer exact), with orjson where that
    gives the same value: text without a 19-digit run and that orjson accepts. For the files
    fountain wrote (journals, caches) and reads back whole; raises ``ValueError`` as
    ``json.loads`` does."""
    if orjson is not None:
        pattern = _LONG_DIGITS_BYTES if isinstance(data, (bytes, bytearray)) else _LONG_DIGITS
        if not pattern.search(data):  # type: ignore[arg-type]
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # json.loads words the error (or takes what orjson does not: NaN, surrogates)
    return json.loads(data)
