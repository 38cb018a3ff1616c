"""The files a spec names (the diagram, the personas), resolved inside the spec folder and read
within limits, and the loading context they report their problems into."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fountain.errors import Problem
from fountain.spec.model import (
    DIAGRAM_FILE,
)
from fountain.spec.paths import confined_path
from fountain.spec.sourcefile import FileProblem, Locator, read_text_file

if TYPE_CHECKING:  # pragma: no cover
    from fountain.diagram import Diagram


@dataclass
class _Context:
    """Everything gathered while loading, before a Spec can be built."""

    folder: Path
    path: Path
    locator: Locator
    data: dict[str, Any]
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    allowed: tuple[Path, ...] = ()  # folders outside the spec folder the user allows (--allow-path)

    def confined(self, name: str, key: tuple[str, ...]) -> Path | None:
        """The file a spec key names, if it lies inside the spec folder or an allowed folder;
        else None with the problem reported."""
        try:
            return confined_path(self.folder, name, ".".join(key), self.locator.at(key), self.allowed)
        except FileProblem as problem:
            self.errors.append(problem.problem)
            return None


def _text_keys(value: Any) -> Any:
    """``value`` with every mapping key that is not a string dropped, at every level."""
    if isinstance(value, dict):
        return {k: _text_keys(v) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _resolve_diagram(ctx: _Context) -> tuple[str, Path | None, str, int] | None:
    """Find the diagram: (text, its file or None when inline, file for locations, first line)."""
    data, folder, loc = ctx.data, ctx.folder, ctx.locator
    inline, by_path = data.get("er_diagram"), data.get("er_diagram_path")
    if inline is not None and by_path is not None:
        ctx.errors.append(
            Problem(
                "er_diagram and er_diagram_path are both given",
                loc.at(("er_diagram_path",), key=True),
                "give the diagram once: inline (er_diagram) or as a file (er_diagram_path)",
            )
        )
        return None
    if isinstance(inline, str) and inline.strip():
        first = loc.content_line(("er_diagram",)) or 1
        return inline, None, str(ctx.path), first
    if inline is not None or (by_path is not None and not isinstance(by_path, str)):
        return None  # a schema problem, already reported
    if isinstance(by_path, str) and by_path.strip():
        confined = ctx.confined(by_path, ("er_diagram_path",))
        if confined is None:
            return None
        target = confined
        if not target.exists() and not target.is_symlink():
            nearby = (
                [p.name for p in folder.iterdir() if p.suffix in (".mermaid", ".mmd", ".md")] if folder.is_dir() else []
            )
            close = get_close_matches(Path(by_path).name, nearby, n=1, cutoff=0.5)
            hint = f"the path is relative to the spec folder {folder}"
            if close:
                hint = f"did you mean {close[0]}? " + hint
            ctx.errors.append(
                Problem(f"er_diagram_path: diagram file not found: {target}", loc.at(("er_diagram_path",)), hint)
            )
            return None
        try:
            text = read_text_file(target, "diagram file", loc.at(("er_diagram_path",)))
        except FileProblem as problem:
            ctx.errors.append(problem.problem)
            return None
        return text, target, str(target), 1
    target = folder / DIAGRAM_FILE
    if not target.exists() and not target.is_symlink():  # a symlink loop is reported by the read
        ctx.errors.append(
            Problem(
                "no diagram: setup.yaml has no er_diagram or er_diagram_path, and there is no "
                f"{DIAGRAM_FILE} beside it",
                str(ctx.path),
                f"write the scene as a mermaid erDiagram in {target} (fountain init shows an example), "
                "or set er_diagram_path",
            )
        )
        return None
    try:
        text = read_text_file(target, "diagram file")
    except FileProblem as problem:
        ctx.errors.append(problem.problem)
        return None
    return text, target, str(target), 1


_HEADER = re.compile(r"^\s*erDiagram\b", re.MULTILINE)


def _parse_diagram(text: str, file: str, first_line: int, inline: bool) -> tuple[Diagram, str]:
    """Parse the diagram; returns it with the text the prompts show. An inline diagram may omit the
    ``erDiagram`` header (the original project's commented example did): the prompts get one."""
    from fountain import diagram as diagram_module

    parsed = diagram_module.parse(text, path=file, require_header=not inline, first_line=first_line)
    shown = text if (not inline or _HEADER.search(text)) else "erDiagram\n" + text
    return parsed, shown.rstrip()


def _load_personas(ctx: _Context) -> tuple[tuple[str, ...], Path | None]:
    data, loc = ctx.data, ctx.locator
    inline, file_name = data.get("personas"), data.get("personas_file")
    if inline is not None and file_name is not None:
        ctx.errors.append(
            Problem(
                "personas and personas_file are both given",
                loc.at(("personas_file",), key=True),
                "list the personas inline or in a file, not both",
            )
        )
        return (), None
    if isinstance(inline, list):
        return tuple(p.strip() for p in inline if isinstance(p, str) and p.strip()), None
    if not isinstance(file_name, str) or not file_name.strip():
        return (), None
    confined = ctx.confined(file_name, ("personas_file",))
    if confined is None:
        return (), None
    target = confined
    where = loc.at(("personas_file",))
    try:
        text = read_text_file(target, "personas file", where)
    except FileProblem as problem:
        p = problem.problem
        hint = p.hint or f"the path is relative to the spec folder {ctx.folder}"
        ctx.errors.append(Problem(f"personas_file: {p.message}", p.location, hint))
        return (), target
    personas: list[str] = []
    jsonl = target.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or (not jsonl and line.startswith("#")):
            continue
        if not jsonl:
            personas.append(line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            ctx.errors.append(
                Problem(
                    f"personas file: line {number} is not valid JSON ({error.msg})",
                    f"{target}:{number}:{error.colno}",
                    'each line must be a JSON object like {"persona": "a retired teacher"}',
                )
            )
            continue
        persona = record.get("persona") if isinstance(record, dict) else None
        if not isinstance(persona, str) or not persona.strip():
            ctx.errors.append(
                Problem(
                    f'personas file: line {number} has no "persona" text',
                    f"{target}:{number}:1",
                    'each line must be a JSON object like {"persona": "a retired teacher"}',
                )
            )
            continue
        personas.append(persona.strip())
    if not personas and not any(p.location and p.location.startswith(str(target)) for p in ctx.errors):
        ctx.errors.append(
            Problem(
                f"personas_file: {target} holds no personas",
                where,
                'write one persona per line (or JSONL with a "persona" field)',
            )
        )
    return tuple(personas), target
