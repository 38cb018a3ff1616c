"""Which files a spec folder may make fountain read, and reading them with limits.

A spec folder is untrusted input (it comes from someone else's repository), so a path it names
(``personas_file``, ``er_diagram_path``, ``raters.real_data``) must resolve, symlinks resolved,
inside the spec folder, unless the user allowed another folder on the command line
(``--allow-path DIR``). Only regular files are read (no FIFO, device or directory), and at most
:data:`MAX_SPEC_FILE_BYTES` of them: ``/dev/zero`` cannot fill the memory, a FIFO cannot block a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fountain.errors import Problem
from fountain.safety import MAX_FILE_BYTES, FileProblem, read_limited

MAX_SPEC_FILE_BYTES = MAX_FILE_BYTES
MAX_NAME_CHARS = 4096  # a longer path is not a path anyone typed
MAX_PART_BYTES = 255  # NAME_MAX of every common file system

__all__ = ["MAX_SPEC_FILE_BYTES", "FileProblem", "confined_path", "read_limited"]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _real(path: Path) -> Path:
    """``path`` with every symlink resolved (non-strict: a missing tail stays as written)."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return path.absolute()


def confined_path(folder: Path, name: str, key: str, location: str, allowed: Iterable[Path] = ()) -> Path:
    """The file ``name`` (as setup.yaml writes it under ``key``) resolves to, or raise FileProblem.

    Relative names are relative to the spec folder. The resolved file must lie inside the spec
    folder or one of the ``allowed`` folders (``--allow-path``).
    """
    if len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise FileProblem(Problem(f"{key}: not a usable file name ({len(name):,} characters)", location))
    target = Path(name)
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES for part in target.parts):
        raise FileProblem(
            Problem(
                f"{key}: a file or folder name in the path is longer than {MAX_PART_BYTES} bytes",
                location,
                "file systems refuse such names; check the value",
            )
        )
    if name.startswith("~"):
        raise FileProblem(
            Problem(
                f"{key}: {name} points into a home folder; a spec may only name files inside its own folder",
                location,
                "copy the file into the spec folder and give its relative path",
            )
        )
    target = target if target.is_absolute() else folder / target
    real = _real(target)
    roots = [_real(folder)] + [_real(Path(p).expanduser()) for p in allowed]
    if not any(_inside(real, root) for root in roots):
        raise FileProblem(
            Problem(
                f"{key}: {name} is outside the spec folder {folder}"
                + (f" (it resolves to {real})" if str(real) != str(target) else ""),
                location,
                "a spec may only read files inside its own folder; if you trust this spec, allow the "
                f"folder with --allow-path {real.parent}",
            )
        )
    return target
