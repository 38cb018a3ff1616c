"""The judge in a run (fountain.run.judging): scores in metadata, judge:<criterion> rejects, the
manifest's judge section and total cost, resume without paying twice, a changed rubric refused,
malformed verdicts, and no judge import when a run has none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_helpers
from fountain import generate
from fountain.errors import OutputError
from fountain.providers.base import ProviderConfig
from fountain.providers.fake import FakeProvider
from fountain.spec.load import load_spec

CRITERIA = ("in_role", "grounded", "direction", "helpful_safe")
RUBRIC = """
judge:
  rubric:
    polite: The assistant is polite.
    concrete: The conversation names concrete facts of the scene.
"""


def _spec(tmp_path: Path, extra: str = ""):
    return load_spec(run_helpers.make_spec(tmp_path, run_helpers.SETUP + extra))


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def _accepted(out: Path) -> list[dict]:
    return run_helpers.records(out / "seeds.jsonl") + run_helpers.records(out / "derivations.jsonl")


def _judge_rejects(out: Path) -> list[dict]:
    return [r for r in run_helpers.records(out / "rejects.jsonl") if r["reason"].startswith("judge:")]


def _pin(monkeypatch, scores: dict) -> None:
    """The judge's provider: a fake whose verdicts have these scores."""
    from fountain.run import judging

    monkeypatch.setattr(
        judging,
        "create_judge_provider",
        lambda config: FakeProvider(ProviderConfig(provider="fake", model="pinned", extra={"judge_scores": scores})),
    )


def test_every_kept_conversation_carries_its_scores_and_low_ones_are_rejected_with_the_criterion(tmp_path):
    out = tmp_path / "out"
    result = generate(_spec(tmp_path), run_helpers.options(out, provider="fake", judge="fake"))
    kept, rejected = _accepted(out), _judge_rejects(out)
    assert kept and rejected  # the fake judge's hashed scores keep most and reject a few
    for record in kept:
        verdict = record["metadata"]["judge"]
        assert set(verdict["scores"]) == set(CRITERIA)
        assert min(verdict["scores"].values()) >= 3 == verdict["threshold"]
        assert verdict["overall"] == round(sum(verdict["scores"].values()) / 4, 3)
        assert verdict["judge"] == "fake:fake" and verdict["reason"]
    for reject in rejected:
        criterion = reject["reason"].split(":", 1)[1]
        scores = reject["metadata"]["judge"]["scores"]
        assert scores[criterion] < 3 and scores[criterion] == min(scores.values())
        assert reject["detail"].startswith("fake judge:")
        assert json.loads(reject["raw"])[0]["role"] in ("system", "user")  # the conversation, to read
    exported = run_helpers.records(result.dataset_path)
    assert exported and all("judge" in r["metadata"] for r in exported)
    judge = _manifest(out)["judge"]
    assert judge["judged"] == len(kept) + len(rejected)
    assert sum(judge["rejected"].values()) == len(rejected)
    assert set(judge["mean"]) == {*CRITERIA, "overall"}
    assert judge["requests"] == judge["judged"]  # one request per verdict


def test_a_criterion_below_the_threshold_rejects_every_conversation_with_its_reason(tmp_path, monkeypatch):
    _pin(monkeypatch, {"*": 5, "concrete": 2})
    out = tmp_path / "out"
    generate(_spec(tmp_path, RUBRIC), run_helpers.options(out, provider="fake", judge="fake:pinned"))
    assert not _accepted(out)
    rejected = _judge_rejects(out)
    assert rejected and {r["reason"] for r in rejected} == {"judge:concrete"}
    assert all(r["detail"] == "fake judge: concrete is the weakest point (2)." for r in rejected)
    assert _manifest(out)["judge"]["mean"] == {"polite": 5.0, "concrete": 2.0, "overall": 3.5}


def test_derivations_are_judged_with_their_parent_in_the_prompt(tmp_path, monkeypatch):
    judges: list[FakeProvider] = []

    def make(config):
        judges.append(FakeProvider(ProviderConfig(provider="fake", model="pinned", extra={"judge_scores": {"*": 5}})))
        return judges[-1]

    from fountain.run import judging

    monkeypatch.setattr(judging, "create_judge_provider", make)
    out = tmp_path / "out"
    generate(_spec(tmp_path), run_helpers.options(out, provider="fake", judge="fake:pinned"))
    prompts = [r.messages[1].content for r in judges[0].requests]
    derived = [p for p in prompts if "This conversation is a derivation" in p]
    assert derived and len(derived) == len(run_helpers.records(out / "derivations.jsonl"))
    assert all("Its parent conversation was" in p and "relative to the parent" in p for p in derived)


def test_a_malformed_verdict_is_asked_again_then_recorded_as_a_reject(tmp_path, monkeypatch):
    _pin(monkeypatch, {"raw": "Looks fine to me, four stars."})
    out = tmp_path / "out"
    result = generate(_spec(tmp_path), run_helpers.options(out, provider="fake", judge="fake:pinned"))
    rejected = _judge_rejects(out)
    assert rejected and {r["reason"] for r in rejected} == {"judge:malformed"}
    assert all(r["detail"].startswith("not JSON") and r["attempts"] == 3 for r in rejected)
    judge = _manifest(out)["judge"]
    assert judge["requests"] == 3 * judge["judged"] and judge["rejected"] == {"malformed": judge["judged"]}
    assert result.stopped is None and _manifest(out)["status"] == "completed"


def test_a_resumed_run_replays_its_verdicts_from_the_cache_and_pays_nothing(tmp_path, mock_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    mock_server.configure(judge_scores={"*": 4, "direction": 2}, judge_malformed=1)
    spec = _spec(tmp_path)
    out = tmp_path / "out"
    opts = {"provider": "openai", "base_url": mock_server.openai_base_url, "model": "gpt-4o-mini"}
    generate(spec, run_helpers.options(out, judge="openai:gpt-4o-mini", **opts))
    first = _manifest(out)
    kept = {r["metadata"]["id"]: r["metadata"]["judge"] for r in _accepted(out)}
    judge = first["judge"]
    # Cost: the judge's own, counted apart and in the run's total.
    assert judge["cost_usd"] > 0 and judge["requests"] == judge["judged"] + 1  # one malformed verdict re-asked
    generation_cost = first["runs"][-1]["stats"]["cost_usd"]
    assert first["cost_usd"] == pytest.approx(generation_cost + judge["cost_usd"], abs=2e-6)
    # A kill -9 after the answers reached the cache and before the journals: lines lost.
    for name in ("seeds.jsonl", "derivations.jsonl", "rejects.jsonl"):
        path = out / name
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    sent = mock_server.stats()["completed"]
    generate(spec, run_helpers.options(out, judge="openai:gpt-4o-mini", **opts))
    assert mock_server.stats()["completed"] == sent and mock_server.duplicates() == {}
    again = _manifest(out)
    assert {r["metadata"]["id"]: r["metadata"]["judge"] for r in _accepted(out)} == kept
    assert again["cost_usd"] == pytest.approx(first["cost_usd"], abs=2e-6)
    assert again["judge"]["cost_usd"] == pytest.approx(judge["cost_usd"], abs=2e-6)
    assert again["judge"]["cache_hits"] > 0


def test_resuming_with_another_rubric_or_judge_is_refused_unless_told(tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate(_spec(tmp_path), run_helpers.options(out, provider="fake", judge="fake"))
    changed = tmp_path / "changed"
    changed.mkdir()
    spec = _spec(changed, RUBRIC)
    with pytest.raises(OutputError) as info:
        generate(spec, run_helpers.options(out, provider="fake", judge="fake"))
    assert "judged with judge fake:fake" in info.value.message and "--resume always" in (info.value.hint or "")
    with pytest.raises(OutputError):  # nor without a judge: the records were judged
        generate(_spec(changed), run_helpers.options(out, provider="fake"))
    result = generate(spec, run_helpers.options(out, provider="fake", judge="fake", resume="always"))
    assert any("judge changed" in w for w in result.warnings)


def test_a_run_without_a_judge_never_imports_the_judge(tmp_path):
    folder = run_helpers.make_spec(tmp_path)
    code = (
        "import sys; from fountain.spec.load import load_spec; from fountain import generate; "
        "from fountain.run.options import RunOptions; "
        f"generate(load_spec({str(folder)!r}), RunOptions(output={str(tmp_path / 'out')!r}, provider='fake', quiet=True)); "
        "print('fountain.raters.judge' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_a_judged_dataset_loads_with_its_declared_features(tmp_path):
    datasets = pytest.importorskip("datasets")
    from fountain.run.features import datasets_features

    out = tmp_path / "out"
    result = generate(_spec(tmp_path), run_helpers.options(out, provider="fake", judge="fake"))
    features = datasets_features(judge=CRITERIA)
    table = datasets.load_dataset(
        "json", data_files=[str(result.dataset_path)], split="train", features=features, cache_dir=str(tmp_path / "c")
    )
    assert table.num_rows == result.dataset_records
    assert table[0]["metadata"]["judge"]["scores"]["grounded"] >= 3


@pytest.mark.slow
def test_the_local_model_judges_without_crashing_on_its_answers(tmp_path):
    pytest.importorskip("llama_cpp")
    from fountain.run.options import RunOptions

    setup = run_helpers.SETUP.replace("[general, concretize]", "[general]") + "judge:\n  max_retries: 0\n"
    spec = load_spec(run_helpers.make_spec(tmp_path, setup))
    out = tmp_path / "out"
    # One seed, no derivation: one judge request on a CPU.
    options = RunOptions(output=out, quiet=True, provider="fake", judge="local", seed=1, fsync=False)
    options = options.with_(seeds_per_direction=1, derivations_per_direction=0)
    result = generate(spec, options)
    judge = _manifest(out)["judge"]
    assert judge["provider"] == "local" and judge["judged"] == 1 and judge["requests"] == 1
    kept, rejected = _accepted(out), _judge_rejects(out)
    assert len(kept) + len(rejected) == 1  # a verdict (whatever the 135M model thinks) or judge:malformed
    if kept:
        assert set(kept[0]["metadata"]["judge"]["scores"]) == set(CRITERIA)
    assert result.stopped is None


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-3-5-haiku-latest"), ("gemini", "gemini-2.0-flash")]
)
def test_an_anthropic_or_gemini_judge_scores_through_its_own_api(tmp_path, mock_server, monkeypatch, provider, model):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    block = f"judge:\n  provider: {provider}\n  model: {model}\n  base_url: {mock_server.url}\n"
    out = tmp_path / "out"
    generate(_spec(tmp_path, "\n" + block), run_helpers.options(out, provider="fake"))
    judge = _manifest(out)["judge"]
    assert judge["provider"] == provider and judge["judged"] > 0 and judge["cost_usd"] > 0
    assert {r.api for r in mock_server.requests} == {provider}  # generation was the fake's
    for record in _accepted(out):
        assert all(1 <= s <= 5 for s in record["metadata"]["judge"]["scores"].values())
    assert judge["judged"] == len(_accepted(out)) + len(_judge_rejects(out))


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-3-5-haiku-latest"), ("gemini", "gemini-2.0-flash")]
)
def test_the_mock_pins_an_anthropic_or_gemini_judges_scores_and_malformed_answers(
    tmp_path, mock_server, monkeypatch, provider, model
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    mock_server.configure(judge_scores={"*": 4, "helpful_safe": 5}, judge_malformed=1)
    block = f"judge:\n  provider: {provider}\n  model: {model}\n  base_url: {mock_server.url}\n"
    out = tmp_path / "out"
    generate(_spec(tmp_path, "\n" + block), run_helpers.options(out, provider="fake"))
    judge = _manifest(out)["judge"]
    assert judge["judged"] > 0 and judge["requests"] == judge["judged"] + 1  # the prose verdict asked again
    assert _judge_rejects(out) == []
    pinned = {name: 5 if name == "helpful_safe" else 4 for name in CRITERIA}
    assert [r["metadata"]["judge"]["scores"] for r in _accepted(out)] == [pinned] * judge["judged"]
