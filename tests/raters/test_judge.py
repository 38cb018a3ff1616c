"""The judge's settings, prompt and verdict parsing (fountain.raters.judge, judge_rubric)."""

from __future__ import annotations

import json

import pytest

import spec_helpers
from fountain.errors import SpecError
from fountain.providers.base import Completion
from fountain.raters.judge import Judge, judge_prompt, judge_schema, parse_verdict
from fountain.raters.judge_rubric import DEFAULT_RUBRIC, JudgeSettings, judge_settings
from fountain.spec.load import load_spec
from fountain.types import Provenance, Sample, Turn

JUDGE_BLOCK = """
judge:
  provider: openai
  model: gpt-4o-mini
  threshold: 4
  rubric:
    polite: The assistant is polite.
    concrete: The user names a concrete problem from the scene.
"""


def _spec(tmp_path, extra: str = ""):
    return load_spec(spec_helpers.make_spec(tmp_path, spec_helpers.VALID + extra))


def _sample(kind: str = "seed", direction: str = "general", turns: int = 2, prefix: int = 0) -> Sample:
    prov = Provenance(kind=kind, direction=direction, category="c", prefix_turns=prefix)
    return Sample("s1", tuple(Turn(f"user line {i}", f"assistant line {i}") for i in range(turns)), prov)


def test_a_spec_without_judge_block_and_no_flag_has_no_judge(tmp_path):
    assert judge_settings(_spec(tmp_path)) is None


def test_the_flag_alone_gives_the_default_rubric_and_threshold(tmp_path):
    settings = judge_settings(_spec(tmp_path), "openai:gpt-4o-mini")
    assert settings is not None
    assert (settings.provider, settings.model) == ("openai", "gpt-4o-mini")
    assert settings.rubric == DEFAULT_RUBRIC
    assert settings.criteria == ("in_role", "grounded", "direction", "helpful_safe")
    assert settings.threshold == 3


def test_the_spec_block_gives_rubric_threshold_and_provider(tmp_path):
    settings = judge_settings(_spec(tmp_path, JUDGE_BLOCK))
    assert settings is not None
    assert settings.criteria == ("polite", "concrete")
    assert settings.threshold == 4
    assert (settings.provider, settings.model) == ("openai", "gpt-4o-mini")


def test_the_flag_overrides_the_blocks_provider_and_none_turns_it_off(tmp_path):
    spec = _spec(tmp_path, JUDGE_BLOCK)
    settings = judge_settings(spec, "fake")
    assert settings is not None and settings.provider == "fake" and settings.model is None
    assert settings.criteria == ("polite", "concrete")  # the rubric still comes from the spec
    assert judge_settings(spec, "none") is None


def test_enabled_false_turns_the_block_off(tmp_path):
    assert judge_settings(_spec(tmp_path, "\njudge:\n  enabled: false\n  provider: fake\n")) is None


def test_a_reserved_criterion_name_is_a_located_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        judge_settings(_spec(tmp_path, "\njudge:\n  rubric:\n    overall: Everything is fine.\n"))
    assert "overall" in info.value.message
    assert "setup.yaml:" in (info.value.location or "")
    assert "judge:<name>" in (info.value.hint or "")


def test_a_threshold_off_the_scale_is_refused_when_the_spec_loads(tmp_path):
    error = spec_helpers.load_error(spec_helpers.make_spec(tmp_path, spec_helpers.VALID + "\njudge:\n  threshold: 9\n"))
    assert "judge" in str(error) and "threshold" in str(error)


def test_changing_the_rubric_changes_its_fingerprint():
    a = JudgeSettings()
    b = JudgeSettings(threshold=4)
    c = JudgeSettings(rubric=DEFAULT_RUBRIC[:2])
    assert len({a.rubric_fingerprint(), b.rubric_fingerprint(), c.rubric_fingerprint()}) == 3


def _completion(text: str, data=None) -> Completion:
    return Completion(text=text, data=data)


def test_a_verdict_parses_from_json_or_json_inside_prose():
    settings = JudgeSettings()
    scores = {"in_role": 5, "grounded": 2, "direction": 4, "helpful_safe": 3}
    text = json.dumps({"scores": scores, "reason": "  Off   the scene. "})
    assert parse_verdict(_completion(text), settings) == (scores, "Off the scene.")
    assert parse_verdict(_completion(f"Here you go:\n```json\n{text}\n```"), settings) == (scores, "Off the scene.")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a four, I think", "not JSON"),
        ('{"verdict": 4}', "no scores"),
        ('{"scores": {"in_role": 5}, "reason": ""}', "no score for grounded"),
        ('{"scores": {"in_role": 7, "grounded": 3, "direction": 3, "helpful_safe": 3}}', "not an integer from 1 to 5"),
        ('{"scores": {"in_role": 2.5, "grounded": 3, "direction": 3, "helpful_safe": 3}}', "not an integer"),
        ('{"scores": {"in_role": true, "grounded": 3, "direction": 3, "helpful_safe": 3}}', "no score for in_role"),
        ("[" * 5000, "not JSON"),
    ],
)
def test_a_malformed_verdict_is_a_reason_not_an_exception(text, problem):
    result = parse_verdict(_completion(text), JudgeSettings())
    assert isinstance(result, str) and problem in result


def test_the_schema_requires_every_criterion_on_the_scale():
    schema = judge_schema(JudgeSettings())
    scores = schema["properties"]["scores"]
    assert scores["required"] == ["in_role", "grounded", "direction", "helpful_safe"]
    assert scores["properties"]["grounded"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["additionalProperties"] is False


def test_a_derivation_is_judged_against_its_parent_and_its_direction(tmp_path):
    spec = _spec(tmp_path)
    parent = _sample(turns=2)
    child = _sample(kind="derivation", direction="in-depth", turns=3, prefix=1)
    prompt = judge_prompt(spec, JudgeSettings(), child, parent)
    assert "Its parent conversation was" in prompt
    assert "first 1 turn(s)" in prompt
    assert "Go deeper instead of wider" in prompt  # the Evol direction's instructions
    assert "relative to the parent" in prompt
    for criterion in DEFAULT_RUBRIC:
        assert f"- {criterion.name}: {criterion.description}" in prompt
    seed_prompt = judge_prompt(spec, JudgeSettings(), parent, None)
    assert "Its parent conversation" not in seed_prompt and 'Direction "general"' in seed_prompt


async def test_a_malformed_answer_is_asked_again_then_recorded_as_malformed():
    answers = ["not json", '{"scores": {}}', "still not json"]
    asked = []

    async def complete(request):
        asked.append(request.sample_index)
        return _completion(answers[len(asked) - 1])

    spec_free_judge = Judge.__new__(Judge)
    Judge.__init__(spec_free_judge, _FakeSpec(), JudgeSettings(max_retries=2), complete)
    verdict = await spec_free_judge.judge(_sample())
    assert asked == [0, 1, 2]  # each try its own cache entry
    assert verdict.malformed.startswith("not JSON") and verdict.attempts == 3
    assert verdict.failed(JudgeSettings()) == "malformed"


async def test_a_good_answer_after_a_malformed_one_is_the_verdict():
    good = json.dumps({"scores": {"in_role": 4, "grounded": 2, "direction": 2, "helpful_safe": 5}, "reason": "thin"})
    answers = ["nope", good]

    async def complete(request):
        return _completion(answers[request.sample_index])

    verdict = await Judge(_FakeSpec(), JudgeSettings(), complete).judge(_sample())
    assert verdict.attempts == 2 and verdict.overall == 3.25
    assert verdict.failed(JudgeSettings()) == "grounded"  # the rubric's first of the lowest scores
    assert verdict.failed(JudgeSettings(threshold=2)) is None


class _FakeSpec:
    category = "support"
    user_role = "CUSTOMER"
    assistant_role = "AGENT"
    diagram_text = "erDiagram\n  CUSTOMER ||--o{ TICKET : opens"


def test_a_re_ask_samples_instead_of_repeating_a_temperature_0_answer():
    judge = Judge(_FakeSpec(), JudgeSettings(), _never)
    first, again = judge.request(_sample(), None, 0), judge.request(_sample(), None, 1)
    assert first.sampling.temperature == 0.0 and again.sampling.temperature == 0.7
    assert first.schema == again.schema and again.sample_index == 1


async def _never(request):
    raise AssertionError("no request expected")
