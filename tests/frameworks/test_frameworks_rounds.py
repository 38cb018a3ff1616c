"""Frameworks with rounds: Filter (generate -> rate -> accumulate) and Feedback (Private Evolution)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fountain.errors import PrivacyBudgetError
from fountain.frameworks import STATE_FILE, load_state, run_framework
from fountain.providers.fake import FakeProvider, ScriptedProvider
from fountain.spec.load import load_spec
from framework_helpers import (
    SETUP,
    HashEmbedder,
    conversation,
    make_spec,
    marriage_real,
    options,
    real_record,
    records,
    write_real,
)

# Distinct enough fake conversations: the hash embedder's bag of words would call many fake
# conversations (made from a few templates) paraphrases at 0.9.
STRICT_DEDUP = "raters:\n  dedup:\n    embedding_threshold: 0.995\n"


# --- Filter --------------------------------------------------------------------------------------


def test_filter_accumulates_rounds_until_the_target(tmp_path):
    spec = load_spec(
        make_spec(tmp_path, setup=SETUP.replace("{seeds}", "1").replace("{derivations}", "0") + STRICT_DEDUP)
    )
    out = tmp_path / "out"
    provider = FakeProvider()
    result = run_framework(
        spec, options(out, framework="Filter", target=5, iterations=10), provider=provider, embedder=HashEmbedder()
    )
    manifest = json.loads((out / "manifest.json").read_text())
    info = manifest["framework"]
    rounds = info["rounds"]["run"]
    kept = [r["accepted"] for r in info["per_round"]]
    # It stopped at the first round that reached the target, well before the 10 allowed.
    assert sum(kept) >= 5 and sum(kept[:-1]) < 5 and rounds == len(kept) < 10
    seeds = records(out / "seeds.jsonl")
    assert len(seeds) == 2 * rounds  # 2 seed directions x 1 seed per round
    assert len({s["metadata"]["id"] for s in seeds}) == len(seeds)  # fresh task ids each round
    assert sorted({s["metadata"]["iteration"] for s in seeds}) == list(range(1, rounds + 1))
    assert len({r.prompt_text() + str(r.sample_index) for r in provider.requests}) == len(provider.requests)
    dataset = records(out / "dataset.jsonl")
    assert len(dataset) == sum(kept) == result.dataset_records
    assert manifest["counts"]["seeds_requested"] == len(seeds)

    # Resume of a finished run: nothing is generated, the dataset is the same.
    before = (out / "dataset.jsonl").read_bytes()
    again = FakeProvider()
    run_framework(
        spec, options(out, framework="Filter", target=5, iterations=10), provider=again, embedder=HashEmbedder()
    )
    assert again.requests == [] and (out / "dataset.jsonl").read_bytes() == before


COOKING = [
    real_record(
        f"How long should I roast {food} in the oven at 200 degrees (recipe {i})?",
        f"Roast the {food} for about {20 + i} minutes, turn it once, and season with salt, "
        "pepper and rosemary before serving.",
        category="cooking",
    )
    for i, food in enumerate(["potatoes", "carrots", "chicken thighs", "pumpkin"])
]


def test_filter_with_rf_rejects_near_copies_and_wrong_categories(tmp_path):
    real_rows = marriage_real(4) + COOKING
    real = write_real(tmp_path / "real.jsonl", real_rows)
    copy = real_rows[1]["messages"]
    near_copy = conversation((copy[0]["content"], copy[1]["content"]))
    cooking = conversation(
        (
            "How long should I roast the pumpkin and the potatoes in the oven?",
            "Roast them for about 25 minutes at 200 degrees, turn them once, and season "
            "with salt, pepper and rosemary.",
        )
    )
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    out = tmp_path / "out"
    provider = ScriptedProvider([near_copy, cooking])
    run_framework(
        spec,
        options(out, framework="Filter", rater="RF", real_data=real, concurrency=1),
        provider=provider,
        embedder=HashEmbedder(),
    )
    seeds = records(out / "seeds.jsonl")
    reasons = {r["id"]: r for r in records(out / "rejects.jsonl")}
    assert reasons[seeds[0]["metadata"]["id"]]["reason"] == "rf:near_copy"
    wrong = reasons[seeds[1]["metadata"]["id"]]
    assert wrong["reason"] == "rf:wrong_category" and wrong["scores"]["nearest_other"] == "cooking"
    assert wrong["scores"]["margin"] < 0
    assert records(out / "dataset.jsonl") == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["framework"]["rf"]["private"] is False
    assert manifest["framework"]["rf"]["real_examples"] == {"marriage counsel": 4, "cooking": 4}
    # The near-copy is the model's answer (in seeds.jsonl); the reject records carry scores, no text.
    reject_text = (out / "rejects.jsonl").read_text()
    assert copy[0]["content"] not in reject_text


def test_filter_with_pe_charges_every_round_to_the_ledger(tmp_path):
    real = write_real(tmp_path / "real.jsonl", marriage_real(10))
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    out = tmp_path / "out"
    run_framework(
        spec,
        options(out, framework="Filter", rater="PE", real_data=real, epsilon=3.0, iterations=2),
        provider=FakeProvider(),
        embedder=HashEmbedder(),
        noise_rng=np.random.default_rng(0),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    privacy = manifest["privacy"]
    assert [e["iteration"] for e in privacy["ledger"]] == [1, 2]
    assert privacy["ledger"][-1]["epsilon"] <= 3.0 * (1 + 1e-9)
    rated = records(out / "seeds.jsonl")
    kept = {d["metadata"]["id"] for d in records(out / "dataset.jsonl")}
    rejects = {r["id"]: r for r in records(out / "rejects.jsonl")}
    for seed in rated:  # every rated conversation is kept or rejected by the noisy vote
        sid = seed["metadata"]["id"]
        assert (sid in kept) != (sid in rejects)
        if sid in rejects:
            assert rejects[sid]["reason"] == "pe:no_votes" and "noisy_votes" in rejects[sid]


# --- Feedback (Private Evolution) --------------------------------------------------------------------


def feedback(tmp_path, out, real, **kw):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    kw.setdefault("epsilon", 4.0)
    kw.setdefault("iterations", 2)
    provider = kw.pop("provider", None) or FakeProvider()
    result = run_framework(
        spec,
        options(out, framework="Feedback", rater="PE", real_data=real, **kw),
        provider=provider,
        embedder=HashEmbedder(),
        noise_rng=kw.pop("rng", None),
    )
    return result, provider


def test_feedback_records_a_ledger_within_budget_and_evolves_the_population(tmp_path):
    real = write_real(tmp_path / "real.jsonl", marriage_real(12))
    out = tmp_path / "out"
    result, provider = feedback(tmp_path, out, real)
    manifest = json.loads((out / "manifest.json").read_text())
    privacy = manifest["privacy"]
    ledger = privacy["ledger"]
    assert [e["iteration"] for e in ledger] == [1, 2]
    assert ledger[0]["epsilon"] < ledger[1]["epsilon"] == privacy["epsilon"] <= 4.0 * (1 + 1e-9)
    assert privacy["epsilon_budget"] == 4.0 and privacy["private_records"] == 12
    assert privacy["accountant"] == "gaussian-dp" and privacy["delta"] == pytest.approx(1 / (12 * math.log(12)))
    # The run's overrides of setup.yaml are recorded, so `fountain status` sees an unchanged spec.
    assert manifest["framework"]["overrides"]["framework"] == "Feedback"
    from fountain.run.status import collect_status

    assert collect_status(out)["spec"]["changed_since"] == []

    state = load_state(out)
    rounds = {r["round"]: r for r in state["rounds"]}
    assert set(rounds) == {0, 1, 2}
    dataset = records(out / "dataset.jsonl")
    assert [d["metadata"]["id"] for d in dataset] == rounds[2]["population"] == [s.id for s in result.samples]
    # The dataset is the last population: variations (derivations) of iteration 2 whose parents
    # the DP histogram selected from iteration 1's population.
    assert dataset and all(d["metadata"]["iteration"] == 2 and d["metadata"]["kind"] == "derivation" for d in dataset)
    assert {d["metadata"]["parent_id"] for d in dataset} <= set(rounds[2]["selected"])
    assert set(rounds[2]["selected"]) <= set(rounds[1]["population"])
    assert set(rounds[1]["selected"]) <= set(rounds[0]["population"])
    # Rank selection: the better half of the population, two variations each.
    size = len(rounds[0]["population"])
    assert len(rounds[1]["selected"]) == math.ceil(size / 2) and rounds[1]["variations"] == 2 * math.ceil(size / 2)
    summary = rounds[1]["selection"]["marriage counsel"]
    assert set(summary) == {"selected", "distinct_selected", "candidates", "nonzero_after_clipping", "fallback"}
    # Variations are asked with SYNTHETIC conversations only, each with its own sample index.
    variation_requests = [r for r in provider.requests if r.purpose == "derivation"]
    assert len({(r.prompt_text(), r.sample_index) for r in variation_requests}) == len(variation_requests)

    # A finished run run again: no request, no new ledger entry, the same dataset.
    before = (out / "dataset.jsonl").read_bytes()
    _, again = feedback(tmp_path, out, real)
    assert again.requests == []
    assert json.loads((out / "manifest.json").read_text())["privacy"]["ledger"] == ledger
    assert (out / "dataset.jsonl").read_bytes() == before


def test_feedback_refuses_a_plan_over_budget_before_any_request(tmp_path):
    real = write_real(tmp_path / "real.jsonl", marriage_real(12))
    provider = FakeProvider()
    with pytest.raises(PrivacyBudgetError) as info:
        feedback(tmp_path, tmp_path / "out", real, epsilon=1.0, sigma=0.2, provider=provider)
    assert "budget" in str(info.value) and provider.requests == []
    assert not (tmp_path / "out").exists()


def test_noise_drawn_for_an_interrupted_iteration_is_never_drawn_again_for_free(tmp_path):
    real = write_real(tmp_path / "real.jsonl", marriage_real(12))
    out = tmp_path / "out"
    feedback(tmp_path, out, real)
    # Simulate a crash right after iteration 2's histogram was charged, before its selection was
    # saved: resuming would need a fresh draw, which the exact budget no longer allows.
    state = load_state(out)
    state["rounds"] = [r for r in state["rounds"] if r["round"] < 2]
    (out / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    provider = FakeProvider()
    with pytest.raises(PrivacyBudgetError) as info:
        feedback(tmp_path, out, real, provider=provider)
    assert "already spent" in str(info.value) and provider.requests == []


def test_the_histogram_steers_selection_towards_the_private_data(tmp_path):
    """With epsilon = inf (no noise) the selected conversations are exactly those the private
    conversations are nearest to; with epsilon = 4 (noise) they still are, with high probability."""
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    # Iteration 0 of Feedback is this Gen run (same task ids, same fake answers).
    gen = run_framework(spec, options(tmp_path / "gen"), provider=FakeProvider(), embedder=HashEmbedder())
    targets = [gen.samples[1], gen.samples[-1]]
    private = [
        {
            "messages": [
                m
                for t in s.turns
                for m in ({"role": "user", "content": t.user}, {"role": "assistant", "content": t.assistant})
            ],
            "metadata": {"category": "marriage counsel"},
        }
        for s in targets
    ]
    # Near-copies of the two targets (private data "looks like" them), a few records each.
    rows = []
    for copy in range(6):
        for record in private:
            edited = json.loads(json.dumps(record))
            edited["messages"][-1]["content"] += f" (variant {copy})"
            rows.append(edited)
    real = write_real(tmp_path / "real.jsonl", rows)
    for epsilon, name in ((math.inf, "exact"), (4.0, "noisy")):
        out = tmp_path / name
        run_framework(
            spec,
            options(out, framework="Feedback", rater="PE", real_data=real, epsilon=epsilon, iterations=1),
            provider=FakeProvider(),
            embedder=HashEmbedder(),
            noise_rng=np.random.default_rng(7),
        )
        selected = load_state(out)["rounds"][1]["selected"]
        assert set(selected[:2]) == {s.id for s in targets}, name
    manifest = json.loads(((tmp_path / "exact") / "manifest.json").read_text())
    assert manifest["privacy"]["sigma"] == 0 and manifest["privacy"]["epsilon"] is None  # no guarantee


def test_a_stopped_filter_run_keeps_its_dataset_so_far_and_resumes(tmp_path):
    from test_frameworks import A_EXACT, A

    from fountain.errors import AuthenticationError

    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    out = tmp_path / "out"
    c = conversation(
        (
            "Since our second child was born we never have time alone. Is that normal, and how "
            "do other couples find time for each other?",
            "It is very common. Many couples plan a fixed evening every week, even a short walk, "
            "and protect it like an appointment.",
        )
    )
    d = conversation(
        (
            "My husband wants to move abroad for a job offer and I want to stay near my parents. "
            "How do we decide without one of us resenting the other?",
            "Write down what each option means for both of you in five years, then discuss the "
            "list together with the help of a neutral third person if needed.",
        )
    )
    broken = ScriptedProvider([A, A_EXACT, AuthenticationError("the key was refused")])
    with pytest.raises(AuthenticationError):
        run_framework(
            spec,
            options(out, framework="Filter", iterations=2, concurrency=1),
            provider=broken,
            embedder=HashEmbedder(),
        )
    kept = [r["metadata"]["iteration"] for r in records(out / "dataset.jsonl")]
    assert kept == [1]  # round 1's kept conversation, not the engine's raw export with its duplicate
    assert [r["reason"] for r in records(out / "rejects.jsonl")] == ["duplicate:exact"]
    working = ScriptedProvider([c, d])
    result = run_framework(
        spec, options(out, framework="Filter", iterations=2, concurrency=1), provider=working, embedder=HashEmbedder()
    )
    assert len(working.requests) == 2 and result.dataset_records == 3
    assert [r["metadata"]["iteration"] for r in records(out / "dataset.jsonl")] == [1, 2, 2]
    assert [r["reason"] for r in records(out / "rejects.jsonl")] == ["duplicate:exact"]
