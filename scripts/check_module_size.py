"""Fail when a module of the package is longer than the limit (docs/architecture.md, "Gates")."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 500


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "src" / "fountain"
    too_long = []
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LIMIT:
            too_long.append(f"{path.relative_to(root.parent)}: {lines} lines (limit {LIMIT})")
    for line in too_long:
        print(line)
    return 1 if too_long else 0


if __name__ == "__main__":
    sys.exit(main())
