"""Keep a run's output (its response cache included) out of the spec folder's git history.

Spec folders are shared through git; ``output/`` holds ``cache.sqlite`` with every answer, which
nobody means to commit. :func:`ensure_output_ignored` writes a ``.gitignore`` naming the output
folder when the spec folder has none (an existing one is the user's and is never touched).
"""

from __future__ import annotations

from pathlib import Path

GITIGNORE = ".gitignore"


def ensure_output_ignored(spec_folder: str | Path, output_dir: str | Path) -> Path | None:
    """Write ``<spec folder>/.gitignore`` with the output folder's relative path when the spec
    folder has no ``.gitignore`` and the output lies inside it; returns the file written, or None.
    Never raises for a folder it cannot write (the run reports its own errors)."""
    folder = Path(spec_folder).resolve()
    try:
        relative = Path(output_dir).resolve().relative_to(folder)
    except ValueError:
        return None  # the output is elsewhere: nothing of it can be committed with the spec
    if not relative.parts:
        return None
    target = folder / GITIGNORE
    if target.exists() or target.is_symlink():
        return None
    line = "/" + relative.as_posix().rstrip("/") + "/"
    try:
        with open(target, "x", encoding="utf-8") as handle:  # "x": never overwrites a file made meanwhile
            handle.write(f"# written by fountain run: the output (with its response cache) is not for git\n{line}\n")
    except OSError:
        return None
    return target
