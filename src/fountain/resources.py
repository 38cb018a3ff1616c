"""Access to files installed with the package (schemas, grammars, data) via importlib.resources."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def read_text(folder: str, name: str) -> str:
    """Text of ``fountain/<folder>/<name>`` as installed: read from the package folder, or through
    importlib.resources where the package is not a folder (a zip; importing importlib.resources
    costs start-up time, so only then)."""
    try:
        return (_PACKAGE / folder / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        from importlib import resources

        return resources.files("fountain").joinpath(folder).joinpath(name).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from ``fountain/schemas`` (e.g. ``"setup.schema.json"``), parsed once."""
    return json.loads(read_text("schemas", name))


def read_grammar(name: str) -> str:
    return read_text("grammars", name)
