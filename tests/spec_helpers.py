"""Helpers shared by the spec tests: write a spec folder, load it, run the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from fountain.errors import FountainError, Problem, SpecError

DIAGRAM = """erDiagram
    COUNSELOR {
        string approach "emotionally focused"
    }
    COUNSELEE {
        int age
    }
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"
    %% Topic: marriage guidance
"""

# A valid Jinja spec; tests replace lines of it to break one thing at a time.
VALID = """\
category: marriage counsel
type: conversation
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a conversation between {{ user_role }} and {{ assistant_role }}.
  {{ scene }}
  {{ direction_instructions }}
derivational_prompt: |
  Continue: {{ conversation_json }}
  {{ direction_instructions }}
seed_evolving_directions:
  - general
derivational_evolving_directions:
  - in-depth
generation:
  seeds_per_direction: 1
  max_turns: 4
model:
  temperature: 0.7
"""


def make_spec(root: Path, setup: str | bytes | None = VALID, diagram: str | None = DIAGRAM, name: str = "spec") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        target = folder / "setup.yaml"
        if isinstance(setup, bytes):
            target.write_bytes(setup)
        else:
            target.write_text(setup, encoding="utf-8")
    if diagram is not None:
        (folder / "diagram.mermaid").write_text(diagram, encoding="utf-8")
    return folder


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the start of ``needle`` in ``text``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def load_error(folder: Path, **kwargs) -> FountainError:
    from fountain.spec.load import load_spec

    with pytest.raises(FountainError) as info:
        load_spec(folder, **kwargs)
    return info.value


def problems_of(error: FountainError) -> list[Problem]:
    if isinstance(error, SpecError):
        return list(error.problems)
    return [Problem(error.message, error.location, error.hint)]


def find_problem(error: FountainError, text: str) -> Problem:
    found = [p for p in problems_of(error) if text in p.message]
    assert found, f"no problem mentions {text!r}: {[str(p) for p in problems_of(error)]}"
    return found[0]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Run ``fountain ARGS`` in-process; returns (exit code, stdout + stderr)."""
    from fountain.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out + captured.err
