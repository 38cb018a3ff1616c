"""The git state of a spec folder: the commit it is at and whether it has uncommitted changes.

Read with the ``git`` command (no library); anything that goes wrong (no git, not a repository,
a timeout) gives ``None``: the manifest then simply records no git state.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool  # uncommitted changes (or untracked files) inside the folder

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty}


def _git(folder: Path, *args: str) -> str | None:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # read-only: never take the index lock
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(folder: str | Path, *, exclude: Iterable[str | Path] = ()) -> GitState | None:
    """Commit and dirtiness of ``folder``, or None when it is not in a git work tree.

    ``exclude``: paths (e.g. the output folder inside the spec folder) whose changes do not
    make the spec dirty.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        return None
    head = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    if head is None or not head.strip():
        return None
    pathspec = ["."]
    for path in exclude:
        path = Path(path).resolve()
        try:
            relative = path.relative_to(folder)
        except ValueError:
            continue  # outside the folder: it cannot affect the status of the folder anyway
        pathspec.append(f":(exclude){relative.as_posix()}")
    status = _git(folder, "status", "--porcelain", "--", *pathspec)
    if status is None:
        return None
    return GitState(commit=head.strip(), dirty=bool(status.strip()))
