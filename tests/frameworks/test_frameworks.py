"""Frameworks: validation before any token, Gen (dedup, idempotent reruns) and GenLLM (enrichment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fountain.cli import main
from fountain.errors import FountainError, PrivacyBudgetError, RealDataError
from fountain.frameworks import plan_framework, run_framework
from fountain.providers.fake import FakeProvider, ScriptedProvider
from fountain.spec.load import load_spec
from framework_helpers import (
    SETUP,
    HashEmbedder,
    conversation,
    make_spec,
    marriage_real,
    options,
    records,
    write_real,
)

# --- validation before a token is spent ----------------------------------------------------------


@pytest.fixture
def spec(tmp_path):
    return load_spec(make_spec(tmp_path))


@pytest.fixture
def real(tmp_path):
    return write_real(tmp_path / "real.jsonl", marriage_real(8))


def test_names_are_case_insensitive_and_unknown_ones_get_a_suggestion(spec, tmp_path):
    assert plan_framework(spec, options(tmp_path, framework="genllm")).framework == "GenLLM"
    assert plan_framework(spec, options(tmp_path)).framework == "Gen"
    with pytest.raises(FountainError) as info:
        plan_framework(spec, options(tmp_path, framework="Feedbak"))
    assert "did you mean Feedback" in info.value.hint and info.value.location == "--framework"
    with pytest.raises(FountainError) as info:
        plan_framework(spec, options(tmp_path, framework="Filter", rater="PF"))
    assert "did you mean" in info.value.hint


@pytest.mark.parametrize(
    "kw, error, words",
    [
        (dict(framework="Gen", rater="PE"), FountainError, "does not use a rater"),
        (dict(framework="Feedback"), FountainError, "--rater PE"),
        (dict(framework="Feedback", rater="RF"), FountainError, "not differentially private"),
        (dict(framework="Feedback", rater="PE", epsilon=4.0), RealDataError, "real conversations"),
        (dict(framework="Filter", rater="RF"), RealDataError, "real conversations"),
        (dict(framework="Gen", personas=3), FountainError, "GenLLM"),
        (dict(framework="Gen", iterations=2), FountainError, "one pass"),
        (dict(framework="Feedback", rater="PE", epsilon=4.0, target=5), FountainError, "last population"),
    ],
)
def test_invalid_combinations_are_refused(spec, tmp_path, kw, error, words):
    with pytest.raises(error) as info:
        plan_framework(spec, options(tmp_path, **kw))
    text = str(info.value)
    assert words in text
    assert info.value.hint  # every refusal says what to do


def test_privacy_options_are_checked(spec, tmp_path, real):
    with pytest.raises(FountainError) as info:
        plan_framework(spec, options(tmp_path, framework="Filter", rater="RF", real_data=real, epsilon=2.0))
    assert "NOT differentially private" in str(info.value)
    with pytest.raises(PrivacyBudgetError) as info:
        plan_framework(spec, options(tmp_path, framework="Feedback", rater="PE", real_data=real))
    assert "--epsilon" in info.value.hint
    with pytest.raises(FountainError):
        plan_framework(spec, options(tmp_path, real_data=real))  # real data without a rater


def test_the_privacy_plan_comes_from_the_accountant(spec, tmp_path, real):
    from fountain.raters.privacy import default_delta, epsilon_for, sigma_for

    plan = plan_framework(
        spec, options(tmp_path, framework="Feedback", rater="PE", real_data=real, epsilon=4.0, iterations=3)
    )
    privacy = plan.privacy
    assert privacy.n_private == 8 and privacy.delta == pytest.approx(default_delta(8))
    assert privacy.sigma == pytest.approx(sigma_for(4.0, 3, default_delta(8)))
    assert privacy.epsilon_planned == pytest.approx(4.0, rel=1e-6)
    assert privacy.epsilon_planned <= 4.0 * (1 + 1e-9)
    assert plan.spec.framework == "Feedback" and plan.spec.privacy.epsilon == 4.0
    # An explicit sigma that spends more than the budget: the run does not start.
    weak = epsilon_for(0.5, 3, default_delta(8))
    assert weak > 4.0
    with pytest.raises(PrivacyBudgetError):
        plan_framework(
            spec,
            options(tmp_path, framework="Feedback", rater="PE", real_data=real, epsilon=4.0, iterations=3, sigma=0.5),
        )
    ok = plan_framework(
        spec, options(tmp_path, framework="Feedback", rater="PE", real_data=real, epsilon=4.0, iterations=3, sigma=20.0)
    )
    assert ok.privacy.epsilon_planned < 1.0


def test_real_data_problems_are_refused_without_quoting_the_data(spec, tmp_path):
    secret = "SECRET-TEXT-4f1e"
    path = write_real(tmp_path / "dup.jsonl", [*marriage_real(3), *marriage_real(1)])
    with pytest.raises(RealDataError) as info:
        plan_framework(spec, options(tmp_path, framework="Filter", rater="RF", real_data=path))
    assert "line 4 duplicates line 1" in str(info.value)
    other = write_real(
        tmp_path / "other.jsonl",
        [
            {
                "messages": [{"role": "user", "content": secret}, {"role": "assistant", "content": "ok then"}],
                "metadata": {"category": "cooking"},
            }
        ]
        * 1,
    )
    with pytest.raises(RealDataError) as info:
        plan_framework(spec, options(tmp_path, framework="Feedback", rater="PE", real_data=other, epsilon=1.0))
    assert "category" in str(info.value) and secret not in str(info.value)


def test_a_refused_plan_spends_nothing(spec, tmp_path, real):
    provider = FakeProvider()
    out = tmp_path / "out"
    with pytest.raises(PrivacyBudgetError):
        run_framework(
            spec,
            options(out, framework="Feedback", rater="PE", real_data=real, epsilon=1.0, sigma=0.1),
            provider=provider,
            embedder=HashEmbedder(),
        )
    assert provider.requests == [] and not out.exists()


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_cli_reports_framework_errors_cleanly(capsys, tmp_path):
    folder = make_spec(tmp_path)
    code, _, err = run_cli(capsys, "run", "-t", str(folder), "--provider", "fake", "--framework", "Feedbak")
    # A usage error (exit 2) listing the frameworks (click matches them case-insensitively).
    assert code == 2 and "'Feedbak' is not one of" in err and "feedback" in err.lower() and "Traceback" not in err
    code, _, err = run_cli(
        capsys,
        "run",
        "-t",
        str(folder),
        "--provider",
        "fake",
        "--framework",
        "Feedback",
        "--rater",
        "PE",
        "--epsilon",
        "4",
    )
    assert code == 1 and "--real-data" in err
    assert not (folder / "output").exists()
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0 and "NOT differentially private" in " ".join(out.split())


def test_cli_dry_run_shows_the_privacy_plan(capsys, tmp_path):
    folder = make_spec(tmp_path)
    real = write_real(tmp_path / "real.jsonl", marriage_real(6))
    code, out, _ = run_cli(
        capsys,
        "run",
        "-t",
        str(folder),
        "--provider",
        "fake",
        "--framework",
        "Feedback",
        "--rater",
        "PE",
        "--real-data",
        str(real),
        "--epsilon",
        "2",
        "--iterations",
        "2",
        "--dry-run",
    )
    assert code == 0
    text = " ".join(out.split())
    assert "framework Feedback: 2 PE iteration(s)" in text and "sigma =" in text
    assert not (folder / "output").exists()


# --- Gen: dedup ----------------------------------------------------------------------------------

LONG_A = (
    "Hello, my wife and I have been fighting about money for weeks now, and every time I try to "
    "bring up the budget she says I am controlling. I do not know how to start the conversation "
    "without it turning into another argument about who spends more."
)
ANSWER_A = (
    "Start by choosing a calm moment, not right after a purchase. Tell her what you feel rather "
    "than what she does wrong, and suggest that you both write down your spending for two weeks, "
    "then sit together and compare notes without judging each other."
)
FOLLOW_A = (
    "That sounds fair, but what if she refuses to write anything down because she thinks it is "
    "pointless and just another way for me to check on her?"
)
REPLY_A = (
    "Then offer to go first and share your own list openly. Showing that the exercise is about "
    "understanding each other, not about control, usually lowers the defences on both sides."
)
A = conversation((LONG_A, ANSWER_A), (FOLLOW_A, REPLY_A))
A_EXACT = conversation((LONG_A.upper().replace(",", " ,"), ANSWER_A.replace(".", " !")), (FOLLOW_A, REPLY_A))
A_NEAR = conversation((LONG_A.replace("weeks", "months"), ANSWER_A), (FOLLOW_A, REPLY_A))
B = conversation(
    (
        "We moved to a new city for my job and my husband feels lonely since he left all his "
        "friends behind. How can I support him without feeling guilty all the time?",
        "Guilt will not help either of you. Ask him what he misses most, then look together "
        "for one local group or class that matches it, and plan a visit to his old friends.",
    )
)


def test_gen_drops_planted_duplicates_and_reruns_are_idempotent(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=2, derivations=0))
    out = tmp_path / "out"
    provider = ScriptedProvider([A, A_EXACT, A_NEAR, B])
    result = run_framework(spec, options(out, concurrency=1), provider=provider, embedder=HashEmbedder())
    seeds = records(out / "seeds.jsonl")
    assert len(seeds) == 4
    ids = [s["metadata"]["id"] for s in seeds]
    rejects = records(out / "rejects.jsonl")
    by_id = {r["id"]: r for r in rejects}
    assert by_id[ids[1]]["reason"] == "duplicate:exact" and by_id[ids[1]]["duplicate_of"] == ids[0]
    assert by_id[ids[2]]["reason"] == "duplicate:minhash" and by_id[ids[2]]["duplicate_of"] == ids[0]
    assert len(rejects) == 2  # the distinct conversation B is kept
    # A dropped duplicate keeps its conversation, to be read beside the one it duplicates.
    assert by_id[ids[2]]["messages"] == seeds[2]["messages"] != seeds[0]["messages"]
    dataset = records(out / "dataset.jsonl")
    assert [d["metadata"]["id"] for d in dataset] == [ids[0], ids[3]] == [s.id for s in result.samples]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] == {"duplicate:exact": 1, "duplicate:minhash": 1}
    assert manifest["counts"]["dataset_records"] == 2
    assert manifest["framework"]["dedup"]["stages_run"] == ["exact", "minhash", "embedding"]

    before = {name: (out / name).read_bytes() for name in ("dataset.jsonl", "rejects.jsonl", "seeds.jsonl")}
    again = ScriptedProvider([A, A_EXACT, A_NEAR, B])
    run_framework(spec, options(out, concurrency=1), provider=again, embedder=HashEmbedder())
    assert again.requests == []  # nothing left to generate
    after = {name: (out / name).read_bytes() for name in before}
    assert after == before  # same dataset byte for byte, no reject recorded twice


def test_gen_without_an_embedder_says_the_embedding_stage_was_skipped(tmp_path, monkeypatch):
    import fountain.frameworks.embeddings as embeddings

    monkeypatch.setattr(embeddings, "_embed_extra_missing", lambda name: "sentence_transformers")
    spec = load_spec(make_spec(tmp_path, seeds=2, derivations=0))
    out = tmp_path / "out"
    result = run_framework(spec, options(out, concurrency=1), provider=ScriptedProvider([A, A_EXACT, A_NEAR, B]))
    assert any("embedding stage skipped" in w and "fountain[embed]" in w for w in result.warnings)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "embedding" in manifest["framework"]["dedup"]["stages_skipped"]
    assert manifest["counts"]["rejected"] == {"duplicate:exact": 1, "duplicate:minhash": 1}


def test_dedup_compares_only_what_a_derivation_wrote(tmp_path):
    # Derivations keep their parent's prefix by design: with the prefix counted they would all
    # look like near-copies of their parent.
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    out = tmp_path / "out"
    run_framework(spec, options(out), provider=FakeProvider(), embedder=HashEmbedder())
    derivations = records(out / "derivations.jsonl")
    assert derivations
    assert not any(
        r["reason"].startswith("duplicate:") and r["kind"] == "derivation" for r in records(out / "rejects.jsonl")
    )
    from fountain.frameworks import dedup_view
    from fountain.types import Sample

    sample = Sample.from_record(derivations[-1])
    assert dedup_view(sample) == sample.turns[sample.provenance.prefix_turns :]


# --- GenLLM ----------------------------------------------------------------------------------------


def test_genllm_enriches_the_scene_and_personas_reach_the_prompts(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    out = tmp_path / "out"
    provider = FakeProvider()
    result = run_framework(
        spec, options(out, framework="GenLLM", personas=3), provider=provider, embedder=HashEmbedder()
    )
    enrichment = json.loads((out / "enrichment.json").read_text())
    personas, scenario = enrichment["personas"], enrichment["scenario"]
    assert len(personas) == 3 == len(set(personas)) and enrichment["requested_personas"] == 3 and scenario
    first = provider.requests[0]
    assert first.purpose == "enrich" and first.schema["properties"]["personas"]["minItems"] == 3
    assert sum(1 for r in provider.requests if r.purpose == "enrich") == 1
    seeds = [r for r in provider.requests if r.purpose == "seed"]
    assert len(seeds) == 2 * 3  # seed directions x seeds per direction x personas
    for persona in personas:
        assert sum(persona in r.prompt_text() for r in seeds) == 2  # one seed per direction
    for request in provider.requests[1:]:
        assert scenario in request.prompt_text()  # the spec's prompts do not use {{ scenario }}
    derivations = [r for r in provider.requests if r.purpose == "derivation"]
    assert derivations and all(any(p in r.prompt_text() for p in personas) for r in derivations)
    dataset = records(out / "dataset.jsonl")
    assert dataset and {d["metadata"]["persona"] for d in dataset} == set(personas)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["enrichment"]["personas"] == 3 and manifest["framework"]["name"] == "GenLLM"
    assert result.dataset_records == len(dataset)

    # A resumed run reads enrichment.json instead of asking again (even without the cache).
    again = FakeProvider()
    run_framework(
        spec, options(out, framework="GenLLM", personas=3, no_cache=True), provider=again, embedder=HashEmbedder()
    )
    assert not any(r.purpose == "enrich" for r in again.requests)
    with pytest.raises(FountainError) as info:
        run_framework(
            spec, options(out, framework="GenLLM", personas=4), provider=FakeProvider(), embedder=HashEmbedder()
        )
    assert "--personas" in info.value.hint or "personas" in str(info.value)


def test_genllm_turn_by_turn_roleplay_gets_the_scenario_and_spec_personas_come_first(tmp_path):
    setup = (
        SETUP.replace("{seeds}", "1").replace("{derivations}", "0")
        + "personas:\n  - a retired schoolteacher who distrusts counselling\n"
    )
    spec = load_spec(make_spec(tmp_path, setup=setup))
    out = tmp_path / "out"
    provider = FakeProvider()
    run_framework(
        spec, options(out, framework="GenLLM", personas=2, mode="turns"), provider=provider, embedder=HashEmbedder()
    )
    scenario = json.loads((out / "enrichment.json").read_text())["scenario"]
    users = [r for r in provider.requests if r.purpose == "seed:user"]
    assert users and all(scenario[:60] in r.messages[0].content for r in users)
    personas = [s["metadata"]["persona"] for s in records(out / "seeds.jsonl")]
    assert personas[0] == "a retired schoolteacher who distrusts counselling"
    assert len(set(personas)) == 3  # the spec's persona and the two generated ones


def test_enrichment_answers_are_validated_and_asked_again():
    import asyncio

    from fountain.generation.enrich import (
        EnrichmentError,
        check_enrichment,
        enrich_scene,
    )

    scenario, personas, problems = check_enrichment(
        {
            "scenario": "A small counselling practice in a busy city, weekly evening sessions.",
            "personas": ["A nurse on night shifts", "a nurse  on night SHIFTS", "x", "A retired pilot"],
        },
        3,
    )
    assert personas == ["A nurse on night shifts", "A retired pilot"]
    assert any("repeats" in p for p in problems) and any("characters" in p for p in problems)

    class Dispatcher:
        def __init__(self, answers):
            self.answers = list(answers)
            self.provider = FakeProvider()
            self.seeds = []

        async def complete(self, request):
            self.seeds.append(request.seed)
            return self.provider._completion(request, self.answers.pop(0))

    spec = load_spec(make_spec(Path(__import__("tempfile").mkdtemp())))
    good = json.dumps(
        {
            "scenario": "Evening sessions in a small practice where couples talk through "
            "conflicts with a calm counselor.",
            "personas": ["A young father of twins", "A teacher who just moved cities"],
        }
    )
    dispatcher = Dispatcher(["not json", good])
    enrichment, warnings = asyncio.run(enrich_scene(spec, dispatcher, n_personas=2, seed=5))
    assert enrichment.personas == ("A young father of twins", "A teacher who just moved cities")
    assert enrichment.attempts == 2 and dispatcher.seeds[0] != dispatcher.seeds[1] and not warnings
    with pytest.raises(EnrichmentError):
        asyncio.run(enrich_scene(spec, Dispatcher(["{}"] * 3), n_personas=2, seed=5, max_retries=2))


def test_framework_settings_are_read_from_setup_yaml(tmp_path):
    setup = (
        SETUP.replace("{seeds}", "1").replace("{derivations}", "0")
        + "framework: Feedback\nraters:\n  rater: PE\n  real_data: private/real.jsonl\n  k: 2\n"
        "privacy:\n  epsilon: 3\n  iterations: 2\n"
    )
    folder = make_spec(tmp_path, setup=setup)
    (folder / "private").mkdir()
    write_real(folder / "private" / "real.jsonl", marriage_real(5))  # relative to the spec folder
    spec = load_spec(folder)
    plan = plan_framework(spec, options(tmp_path / "out"))
    assert (plan.framework, plan.rater, plan.k, plan.iterations) == ("Feedback", "PE", 2, 2)
    assert plan.privacy.epsilon_budget == 3.0 and plan.privacy.n_private == 5
    assert plan.overrides == {}  # nothing changed on the command line
    # Command-line options win over the file, and are recorded as overrides.
    plan = plan_framework(spec, options(tmp_path / "out", epsilon=1.5, iterations=1))
    assert plan.privacy.epsilon_budget == 1.5 and plan.iterations == 1
    assert plan.overrides == {"privacy.epsilon": 1.5, "privacy.iterations": 1}
    assert plan.spec.fingerprint() != spec.fingerprint()


def test_pe_plan_warns_when_delta_or_private_data_make_the_guarantee_weak(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    real = write_real(tmp_path / "real.jsonl", marriage_real(10))
    weak = plan_framework(
        spec,
        options(tmp_path / "a", framework="Feedback", rater="PE", real_data=real, epsilon=4.0, delta=0.2, iterations=2),
    )
    assert any("not below 1/N = 0.1 for 10 private" in note for note in weak.notes)
    noisy = plan_framework(
        spec, options(tmp_path / "b", framework="Feedback", rater="PE", real_data=real, epsilon=0.1, iterations=5)
    )
    assert any("only 10 private conversation(s)" in note for note in noisy.notes)
    sound = plan_framework(
        spec,
        options(
            tmp_path / "c", framework="Feedback", rater="PE", real_data=real, epsilon=4.0, delta=1e-3, iterations=2
        ),
    )
    assert not any("1/N" in note or "mostly noise" in note for note in sound.notes)


def test_gen_without_dedup_exports_the_journals_without_holding_the_samples(tmp_path):
    from fountain.run.samples import ResultSamples

    setup = SETUP.replace("{seeds}", "3").replace("{derivations}", "1") + "raters:\n  dedup:\n    enabled: false\n"
    spec = load_spec(make_spec(tmp_path, setup=setup))
    out = tmp_path / "out"
    result = run_framework(spec, options(out), provider=FakeProvider())
    journals = records(out / "seeds.jsonl") + records(out / "derivations.jsonl")
    dataset = records(out / "dataset.jsonl")
    assert len(dataset) == len(journals) > 6
    assert [d["metadata"]["id"] for d in dataset] == [j["metadata"]["id"] for j in journals]
    assert [d["messages"] for d in dataset] == [j["messages"] for j in journals]
    # the result's samples are read from the journals on demand, not a list held in memory
    assert isinstance(result.samples, ResultSamples) and len(result.samples) == len(dataset)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["dataset_records"] == len(dataset)
    assert manifest["framework"]["dedup"] == {"enabled": False}


def test_the_result_says_resumed_only_when_an_earlier_run_was_continued(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    out = tmp_path / "out"
    assert run_framework(spec, options(out), provider=FakeProvider()).resumed is False
    assert run_framework(spec, options(out), provider=FakeProvider()).resumed is True
