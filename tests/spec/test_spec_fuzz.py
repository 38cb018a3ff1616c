"""Fuzzed spec folders (hostile keys, paths, devices, links, control characters, templates, huge
diagrams): each loads or ends in a located error; never a traceback or a hang.
``benchmarks/fuzz.py`` runs 5,000 of them."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from fountain.testing.fuzz import spec_outcome, spec_strategy  # noqa: E402


def test_fuzzed_spec_folders_load_or_give_a_located_error(tmp_path):
    outcomes: Counter[str] = Counter()
    counter = itertools.count()

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(spec_strategy())
    def check(folder_text):
        setup, diagram = folder_text
        outcomes[spec_outcome(tmp_path / f"s{next(counter)}", setup, diagram)] += 1

    check()
    assert outcomes["error"] > 0
