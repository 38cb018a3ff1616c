"""Diagrams from someone else's spec folder: preprocessing is linear, and a diagram file that is a
FIFO, a loop of links or a name too long is a DiagramError, never a hang or an OSError."""

from __future__ import annotations

import os
import time

import pytest

from fountain.diagram import load_diagram, parse
from fountain.errors import DiagramError


@pytest.mark.parametrize(
    "text",
    [
        "%%{" * 200_000,  # 600 KB of unclosed directives: minutes with the old `.*?` regex
        "erDiagram\n" + "%%{\n" * 150_000,
        "---\n" + "a: b\n" * 100_000,  # front matter never closed
    ],
)
def test_hostile_preprocessing_input_is_refused_in_linear_time(text):
    started = time.monotonic()
    with pytest.raises(DiagramError):
        parse(text)
    assert time.monotonic() - started < 3


def test_many_closed_directives_still_parse():
    diagram = parse("erDiagram\n" + "%%{init: {}}%% " * 10_000 + "\nA ||--o{ B : has\n")
    assert {"A", "B"} <= set(diagram.entities)


def test_a_fifo_diagram_is_refused_without_blocking(tmp_path):
    path = tmp_path / "d.mermaid"
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(DiagramError, match="FIFO"):
        load_diagram(path)
    assert time.monotonic() - started < 3


def test_a_looping_link_and_a_long_name_are_diagram_errors(tmp_path):
    loop = tmp_path / "loop.mermaid"
    loop.symlink_to(loop)
    with pytest.raises(DiagramError, match="loops"):
        load_diagram(loop)
    with pytest.raises(DiagramError):
        load_diagram(tmp_path / ("c" * 300))
