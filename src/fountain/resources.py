"""Access to files installed with the package (schemas, grammars, data) via importlib.resources."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


def read_text(folder: str, name: str) -> str:
    """Text of ``fountain/<folder>/<name>`` as installed."""
    return resources.files("fountain").joinpath(folder).joinpath(name).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from ``fountain/schemas`` (e.g. ``"setup.schema.json"``), parsed once."""
    return json.loads(read_text("schemas", name))


def read_grammar(name: str) -> str:
    return read_text("grammars", name)
