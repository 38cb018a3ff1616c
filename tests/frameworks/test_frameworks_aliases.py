"""Filter and Feedback plan aliased directions once (``in-depth`` and ``deepen`` are one prompt),
as the Gen engine does at plan time (``spec.directions.distinct_directions``)."""

from __future__ import annotations

from fountain.frameworks import load_state, run_framework
from fountain.providers.fake import FakeProvider
from fountain.spec.load import load_spec
from framework_helpers import SETUP, HashEmbedder, make_spec, marriage_real, options, records, write_real

STRICT_DEDUP = "raters:\n  dedup:\n    embedding_threshold: 0.995\n"


def aliased_setup(seed_directions: str, derivational: str, seeds: int = 1, derivations: int = 1) -> str:
    text = SETUP.replace("{seeds}", str(seeds)).replace("{derivations}", str(derivations))
    text = text.replace(
        "seed_evolving_directions: [general, concretize]", f"seed_evolving_directions: {seed_directions}"
    )
    text = text.replace(
        "derivational_evolving_directions: [in-depth, breadth]", f"derivational_evolving_directions: {derivational}"
    )
    return text + STRICT_DEDUP


def test_filter_plans_aliased_seed_directions_once(tmp_path):
    spec = load_spec(
        make_spec(tmp_path, setup=aliased_setup("[general, in-depth, deepen, Deepen]", "[breadth]", derivations=0))
    )
    out = tmp_path / "out"
    provider = FakeProvider()
    run_framework(spec, options(out, framework="Filter", iterations=2), provider=provider, embedder=HashEmbedder())
    seeds = records(out / "seeds.jsonl") + [r for r in records(out / "rejects.jsonl") if r.get("kind") == "seed"]
    directions = sorted(
        s["metadata"]["direction"] if "metadata" in s and "direction" in s["metadata"] else s["direction"]
        for s in seeds
    )
    # 2 distinct directions x 1 seed x 2 rounds; the aliases "deepen"/"Deepen" are never planned.
    assert directions == ["general", "general", "in-depth", "in-depth"]
    seed_prompts = [r.prompt_text() + str(r.sample_index) for r in provider.requests if r.purpose == "seed"]
    assert len(seed_prompts) == 4 and len(set(seed_prompts)) == 4


def test_feedback_varies_along_distinct_directions_only(tmp_path):
    spec = load_spec(make_spec(tmp_path, setup=aliased_setup("[general, concretize]", "[in-depth, deepen, depth]")))
    real = write_real(tmp_path / "real.jsonl", marriage_real(12))
    out = tmp_path / "out"
    run_framework(
        spec,
        options(out, framework="Feedback", rater="PE", real_data=real, epsilon=4.0, iterations=1),
        provider=FakeProvider(),
        embedder=HashEmbedder(),
    )
    state = load_state(out)
    rounds = {r["round"]: r for r in state["rounds"]}
    assert rounds[1]["variations"] >= 2
    variations = [d for d in records(out / "derivations.jsonl") if d["metadata"]["iteration"] == 1]
    assert variations and {d["metadata"]["direction"] for d in variations} == {"in-depth"}
