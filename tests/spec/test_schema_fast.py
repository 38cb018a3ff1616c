"""The quick setup.yaml check never passes what setup.schema.json rejects, passes the sample
specs, and lets a valid spec load without importing jsonschema."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fountain.spec.schema_errors import schema_validator, setup_schema
from fountain.spec.schema_fast import surely_valid

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_SETUPS = sorted(SAMPLES.glob("*/setup.yaml"))


def _valid(data: object) -> bool:
    return not any(True for _ in schema_validator().iter_errors(data))


@pytest.mark.parametrize("path", SAMPLE_SETUPS, ids=lambda p: p.parent.name)
def test_the_sample_specs_pass_the_quick_check(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _valid(data)
    assert surely_valid(data, setup_schema())


# Values of every kind the schema distinguishes, including the awkward ones.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "x", "json", "turns", "PE", "Gen", "http://h", "https://h/v1", "A_B", "1x", "echo"]),
    st.text(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["enabled", "k", "x", "name"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(schema: dict, prefix: tuple = ()) -> list[tuple]:
    """Key paths the schema names (top level and one block down)."""
    found = []
    for key, sub in schema.get("properties", {}).items():
        found.append((*prefix, key))
        if isinstance(sub, dict) and "properties" in sub and not prefix:
            found.extend(_paths(sub, (key,)))
    return found


PATHS = _paths(setup_schema()) + [("unknown_key",), ("model", "unknown"), ("generation", "x")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(SAMPLE_SETUPS),
    changes=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3),
    drop=st.lists(st.sampled_from(PATHS), max_size=1),
)
def test_the_quick_check_never_passes_what_the_schema_rejects(base, changes, drop):
    data = copy.deepcopy(yaml.safe_load(base.read_text(encoding="utf-8")))
    for path, value in changes:
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    for path in drop:
        target = data
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(path[-1], None)
    if surely_valid(data, setup_schema()):
        assert _valid(data), data


def test_a_valid_spec_loads_without_importing_jsonschema():
    folder = SAMPLES / "marriage_counsel"
    code = (
        "import sys\n"
        "from fountain.spec.load import load_spec\n"
        f"load_spec({str(folder)!r})\n"
        "print('jsonschema' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
