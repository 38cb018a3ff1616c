"""A diagram parsed before comes from the parse cache: the same Diagram, without importing Lark;
a damaged or foreign cache file is ignored."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from fountain.diagram import parse_cache
from fountain.diagram.parser import parse

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DIAGRAMS = sorted(SAMPLES.glob("*/diagram.mermaid"))


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "fountain" / "diagrams"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.parent.name)
def test_a_cached_parse_gives_the_same_diagram(path, cache_home):
    text = path.read_text(encoding="utf-8")
    first = parse(text, path=str(path))
    assert len(list(cache_home.glob("*.pickle"))) == 1
    again = parse(text, path=str(path))
    assert vars(again) == vars(first)
    assert again.to_dict() == first.to_dict()


def test_a_cached_parse_does_not_import_lark(cache_home):
    path = DIAGRAMS[0]
    parse(path.read_text(encoding="utf-8"))
    code = (
        "import sys\n"
        "from fountain.diagram.parser import parse\n"
        f"parse(open({str(path)!r}, encoding='utf-8').read())\n"
        "print('lark' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(cache_home.parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "False"


def test_a_damaged_or_foreign_cache_file_is_ignored(cache_home):
    text = DIAGRAMS[0].read_text(encoding="utf-8")
    expected = parse(text).to_dict()
    (cached,) = cache_home.glob("*.pickle")
    cached.write_bytes(b"not a pickle")
    assert parse(text).to_dict() == expected
    (cached,) = cache_home.glob("*.pickle")
    foreign = pickle.dumps([Path("a class the cache never stores")])
    with pytest.raises(pickle.UnpicklingError):
        parse_cache._Unpickler(io.BytesIO(foreign)).load()
    cached.write_bytes(foreign)
    assert parse(text).to_dict() == expected


def test_a_diagram_error_is_reported_whether_or_not_the_cache_is_warm(cache_home):
    from fountain.errors import DiagramError

    bad = "erDiagram\n    A ||--o{ : missing\n"
    for _ in range(2):
        with pytest.raises(DiagramError) as error:
            parse(bad)
        assert error.value.line == 2
    assert not list(cache_home.glob("*.pickle"))


def test_the_cache_keeps_at_most_max_files(cache_home, monkeypatch):
    monkeypatch.setattr(parse_cache, "MAX_FILES", 8)
    for i in range(20):
        parse(f"erDiagram\n    A{i} ||--o{{ B : has\n")
    assert 0 < len(list(cache_home.glob("*.pickle"))) <= 8
