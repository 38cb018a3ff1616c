"""Diagram files (a ``.mermaid`` file or a spec folder) and the CLI's tree view."""

from __future__ import annotations

import os
from pathlib import Path

from fountain.diagram.model import CARDINALITY_WORDS, Diagram
from fountain.diagram.parser import parse
from fountain.errors import DiagramError
from fountain.safety import FileProblem, read_limited

# ---- files and presentation --------------------------------------------------------------------


def load_diagram(path: str | Path) -> Diagram:
    """Read and parse a ``.mermaid`` file, or the diagram of a spec folder.

    For a folder, the diagram is the one its ``setup.yaml`` names (inline ``er_diagram``, then
    ``er_diagram_path``), else ``diagram.mermaid`` beside it. Every problem is a DiagramError.
    """
    path = Path(path)
    try:
        is_folder = path.is_dir()
    except OSError:  # a name too long, say: reading it as a file reports the problem
        is_folder = False
    if not is_folder:
        return parse(_read_text(path), path=str(path))
    setup = path / "setup.yaml"
    inline, inline_line, named = _diagram_keys(setup) if setup.is_file() else (None, 1, None)
    if inline is not None:
        return parse(inline, path=str(setup), require_header=False, first_line=inline_line)
    if named is not None:
        target = path / named
        return parse(_read_text(target), path=str(target))
    candidate = path / "diagram.mermaid"
    if candidate.is_file():
        return parse(_read_text(candidate), path=str(candidate))
    raise DiagramError(
        "this folder has no diagram.mermaid and no setup.yaml that names a diagram",
        path=str(path),
        hint="give a .mermaid file, or a spec folder with diagram.mermaid "
        "(or `er_diagram` / `er_diagram_path` in setup.yaml)",
    )


def _diagram_keys(setup: Path) -> tuple[str | None, int, str | None]:
    """(inline er_diagram, its first line in setup.yaml, er_diagram_path) from a spec's setup.yaml.

    A setup.yaml that cannot be read as YAML names nothing here: ``fountain validate`` reports it.
    """
    import yaml

    try:
        root = yaml.compose(_read_text(setup))
    except (yaml.YAMLError, DiagramError):
        return None, 1, None
    inline, line, named = None, 1, None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:str":
                continue
            if key.value == "er_diagram":
                inline = value.value
                # A block scalar (`|`, `>`) starts on the line after its indicator.
                line = value.start_mark.line + (2 if value.style in ("|", ">") else 1)
            elif key.value == "er_diagram_path":
                named = value.value
    return inline, line, named


def _exists(path: Path) -> bool:
    """Whether anything (a symlink loop included) is at ``path``; a name too long counts as there
    (reading it reports the real problem)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _read_text(path: Path) -> str:
    if not _exists(path):
        raise DiagramError(
            "no such file or folder",
            path=str(path),
            hint="give a .mermaid file or a spec folder that holds diagram.mermaid",
        )
    try:
        data = read_limited(path, "diagram file", str(path))  # regular files only, size-limited
    except FileProblem as refused:
        raise DiagramError(refused.problem.message, path=str(path), hint=refused.problem.hint) from None
    if b"\x00" in data[:8192]:
        raise DiagramError(
            "this is a binary file, not a mermaid diagram",
            path=str(path),
            hint="a diagram is a UTF-8 text file that starts with `erDiagram`",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DiagramError(
            "the diagram is not valid UTF-8 text", path=str(path), line=line, hint="save the file as UTF-8"
        ) from None


def rich_tree(diagram: Diagram, label: str | None = None):
    """The diagram as a ``rich.tree.Tree``: entities with attributes, relationships in words, notes."""
    from rich.markup import escape
    from rich.tree import Tree

    title = diagram.title or diagram.acc_title
    tree = Tree(
        f"[bold]{escape(label or diagram.path or 'erDiagram')}[/]" + (f"  [dim]{escape(title)}[/]" if title else "")
    )
    entities = tree.add(f"[bold]entities[/] ({len(diagram.entities)})")
    for name in diagram.entities:
        entity = diagram.entity(name)
        text = f"[cyan]{escape(name)}[/]"
        if entity.alias:
            text += f' [dim]"{escape(entity.alias)}"[/]'
        if entity.classes:
            text += f" [dim]:::{escape(','.join(entity.classes))}[/]"
        node = entities.add(text)
        for attribute in entity.attributes:
            row = f"{escape(attribute.name)} [dim]{escape(attribute.type)}[/]"
            if attribute.keys:
                row += f" [yellow]{escape(', '.join(attribute.keys))}[/]"
            if attribute.comment:
                row += f' [dim]"{escape(attribute.comment)}"[/]'
            node.add(row)
    relationships = tree.add(f"[bold]relationships[/] ({len(diagram.relationships)})")
    for rel in diagram.relationships:
        node = relationships.add(
            f"[cyan]{escape(rel.left)}[/] {escape(rel.label or 'is related to')} [cyan]{escape(rel.right)}[/]"
        )
        node.add(
            f"[dim]{CARDINALITY_WORDS[rel.left_cardinality]} {escape(rel.left)} to "
            f"{CARDINALITY_WORDS[rel.right_cardinality]} {escape(rel.right)}"
            f"{'' if rel.identifying else ', non-identifying'}[/]"
        )
    if diagram.notes:
        notes = tree.add(f"[bold]notes[/] ({len(diagram.notes)})")
        for note in diagram.notes:
            notes.add(escape(note))
    return tree
