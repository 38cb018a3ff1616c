"""A Filter/Feedback run whose rounds are complete re-exports without generating or judging: asked
for another judge or rubric than the one that scored its records, it says so (Gen refuses)."""

from __future__ import annotations

import json

from fountain.frameworks import run_framework
from fountain.providers.fake import FakeProvider
from fountain.spec.load import load_spec
from framework_helpers import SETUP, HashEmbedder, make_spec, options

STRICT_DEDUP = "raters:\n  dedup:\n    embedding_threshold: 0.995\n"


def _filter(tmp_path, out, judge):
    spec = load_spec(
        make_spec(tmp_path, setup=SETUP.replace("{seeds}", "1").replace("{derivations}", "0") + STRICT_DEDUP)
    )
    provider = FakeProvider()
    result = run_framework(
        spec,
        options(out, framework="Filter", target=2, iterations=6, judge=judge),
        provider=provider,
        embedder=HashEmbedder(),
    )
    return result, provider


def test_a_completed_filter_run_re_exported_with_another_judge_warns(tmp_path):
    out = tmp_path / "out"
    first, _ = _filter(tmp_path / "a", out, "fake")
    assert json.loads((out / "manifest.json").read_text())["judge"]["provider"] == "fake"
    assert not any("judge" in w for w in first.warnings)

    same, provider = _filter(tmp_path / "b", out, "fake")
    assert provider.requests == [] and not any("judge" in w for w in same.warnings)

    other, provider = _filter(tmp_path / "c", out, "fake:stricter")
    assert provider.requests == []
    notes = [w for w in other.warnings if "judge" in w]
    assert notes and "fake:fake" in notes[0] and "fake:stricter" in notes[0] and "--output" in notes[0]

    none, _ = _filter(tmp_path / "d", out, "none")
    assert any("judged by fake:fake" in w and "no judge" in w for w in none.warnings)
