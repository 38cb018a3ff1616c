"""Bad model output and provider failures: retries, rejects with reasons, clean stops."""

from __future__ import annotations

import json

import pytest

from fountain import generate
from fountain.errors import (
    AuthenticationError,
    BadRequestError,
    FountainError,
    ProviderError,
    QuotaExceededError,
)
from fountain.providers.fake import ScriptedProvider
from fountain.run.options import RunOptions
from fountain.spec.load import load_spec
from run_helpers import make_spec, records

SETUP = """\
category: marriage counsel
user_role: COUNSELEE
assistant_role: COUNSELOR
initial_prompt: |
  Write a conversation between {{ user_role }} and {{ assistant_role }}. {{ direction_instructions }}
derivational_prompt: |
  Continue: {{ conversation_json }}
output_format: '{"conversations": [{"user": "...", "assistant": "..."}]}'
seed_evolving_directions: [general]
derivational_evolving_directions: [in-depth]
generation:
  seeds_per_direction: 1
  derivations_per_direction: 0
  min_turns: 1
  max_turns: 3
  max_retries: 1
"""

GOOD = json.dumps(
    {
        "conversations": [
            {
                "user": "My husband and I stopped talking after dinner, and our marriage feels cold.",
                "assistant": "When did you notice the silence starting, and what did evenings look like before?",
            }
        ]
    }
)

BAD = {
    "truncated": ('{"conversations": [{"user": "We fight about money", "assis', "truncated"),
    "wrong_keys": (json.dumps({"conversations": [{"question": "Hi there", "answer": "Hello"}]}), "schema"),
    "empty_turn": (json.dumps({"conversations": [{"user": "   ", "assistant": "Tell me more."}]}), "schema"),
    "refusal": (
        json.dumps(
            {"conversations": [{"user": "Can you help us?", "assistant": "I'm sorry, but I cannot help with that."}]}
        ),
        "elimination:refusal",
    ),
    "turn_count": (
        json.dumps(
            {
                "conversations": [
                    {"user": f"Question {i} about our finances?", "assistant": f"Answer {i}: write a budget together."}
                    for i in range(5)
                ]
            }
        ),
        "turn_count",
    ),
    "not_json": ("I would be glad to write that conversation for you!", "invalid_json"),
    "leak": (
        json.dumps(
            {
                "conversations": [
                    {"user": "As the erDiagram says, I am the COUNSELEE.", "assistant": "Tell me about your week."}
                ]
            }
        ),
        "elimination:leaked_template",
    ),
}


def opts(out, **kw):
    return RunOptions(output=out, quiet=True, seed=0, fsync=False, no_cache=True, **kw)


@pytest.fixture
def spec(tmp_path):
    return load_spec(make_spec(tmp_path, SETUP))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_output_is_retried_then_rejected(case, spec, tmp_path):
    text, reason = BAD[case]
    provider = ScriptedProvider([text])
    result = generate(spec, opts(tmp_path / "out"), provider=provider)
    assert len(provider.requests) == 2  # first try + max_retries (1)
    assert result.retries == 1
    rejects = records(tmp_path / "out" / "rejects.jsonl")
    assert len(rejects) == 1
    reject = rejects[0]
    assert reject["reason"] == reason, reject
    assert reject["detail"] and reject["raw"] == text and reject["attempts"] == 2
    assert reject["metadata"]["reasons"] == [reason, reason]
    assert result.dataset_records == 0
    assert result.counts["rejected"] == {reason: 1}
    # the retry told the model what was wrong (API providers are re-asked with the error)
    retry = provider.requests[1]
    assert retry.messages[-1].content.startswith("Your previous answer was invalid:")
    assert retry.messages[-2].role == "assistant"
    assert retry.seed != provider.requests[0].seed


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_output_then_good_is_accepted(case, spec, tmp_path):
    provider = ScriptedProvider([BAD[case][0], GOOD])
    result = generate(spec, opts(tmp_path / "out"), provider=provider)
    assert result.dataset_records == 1
    seed = records(tmp_path / "out" / "seeds.jsonl")[0]
    assert seed["metadata"]["attempt"] == 1
    assert records(tmp_path / "out" / "rejects.jsonl") == []


def test_prose_around_json_is_accepted_without_retry(spec, tmp_path):
    provider = ScriptedProvider([f"Sure! Here it is:\n```json\n{GOOD}\n```\nHope it helps."])
    result = generate(spec, opts(tmp_path / "out"), provider=provider)
    assert len(provider.requests) == 1 and result.dataset_records == 1


def test_garbage_never_crashes(spec, tmp_path):
    script = [
        "",
        "null",
        "[]",
        "{}",
        "[[[[",
        "\x00\x01",
        '{"conversations": "no"}',
        "}" * 100,
        json.dumps({"conversations": [None]}),
        json.dumps([1, 2, 3]),
    ]
    spec_many = load_spec(
        make_spec(tmp_path, SETUP.replace("seeds_per_direction: 1", "seeds_per_direction: 5"), name="many")
    )
    result = generate(spec_many, opts(tmp_path / "out"), provider=ScriptedProvider(script))
    assert result.counts["accepted"]["seed"] == 0
    assert sum(result.counts["rejected"].values()) == 5


def test_local_provider_is_not_reasked_with_the_error(spec, tmp_path):
    provider = ScriptedProvider([BAD["wrong_keys"][0], GOOD])
    provider.name = "local"  # the local model gets the same prompt with a new seed
    generate(spec, opts(tmp_path / "out", mode="json"), provider=provider)
    assert provider.requests[1].messages == provider.requests[0].messages
    assert provider.requests[1].seed != provider.requests[0].seed


@pytest.mark.parametrize(
    "error", [AuthenticationError("bad key", status=401), QuotaExceededError("no credit", status=429)]
)
def test_fatal_provider_error_stops_cleanly(spec, tmp_path, error):
    setup = SETUP.replace("seeds_per_direction: 1", "seeds_per_direction: 3")
    spec = load_spec(make_spec(tmp_path, setup, name="three"))
    out = tmp_path / "out"
    provider = ScriptedProvider([GOOD, error])
    with pytest.raises(FountainError) as info:
        generate(spec, opts(out, concurrency=1), provider=provider)
    assert "run the same command again" in info.value.hint
    # what was done is saved, the manifest says why it stopped
    assert len(records(out / "seeds.jsonl")) == 1
    assert len(records(out / "dataset.jsonl")) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "stopped" and manifest["stop_reason"]
    # the same command continues where it stopped
    again = ScriptedProvider([GOOD])
    result = generate(spec, opts(out), provider=again)
    assert result.counts["accepted"]["seed"] == 3
    assert len(again.requests) == 2


def test_non_fatal_provider_error_rejects_and_resume_retries(spec, tmp_path):
    out = tmp_path / "out"
    provider = ScriptedProvider([BadRequestError("prompt too long for the context", status=400)])
    # Nothing accepted because the provider failed: an error naming the last provider error.
    with pytest.raises(ProviderError, match="no conversation was accepted.*prompt too long"):
        generate(spec, opts(out), provider=provider)
    rejects = records(out / "rejects.jsonl")
    assert [r["reason"] for r in rejects] == ["provider_error"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] == {"provider_error": 1} and manifest["status"] == "stopped"
    again = ScriptedProvider([GOOD])
    result = generate(spec, opts(out), provider=again)
    assert len(again.requests) == 1  # provider errors are tried again on resume
    assert result.counts["accepted"]["seed"] == 1
    assert records(out / "rejects.jsonl") == []


def test_turns_mode_bad_utterances_are_retried(spec, tmp_path):
    # user, assistant: the assistant's first answer is a refusal, its retry is fine
    script = [
        "COUNSELEE: We keep fighting about money in our marriage.",
        "I'm sorry, but I can't help with that.",
        "Let us look at when the fights start. COUNSELEE: ok",
    ]
    provider = ScriptedProvider(script)
    generate(spec, opts(tmp_path / "out", mode="turns", max_turns=1), provider=provider)
    seeds = records(tmp_path / "out" / "seeds.jsonl")
    assert len(seeds) == 1
    assert [m["content"] for m in seeds[0]["messages"]] == [
        "We keep fighting about money in our marriage.",
        "Let us look at when the fights start.",
    ]
    assert len(provider.requests) == 3


def test_turns_mode_rejects_after_retries(spec, tmp_path):
    provider = ScriptedProvider(["...", "?!"])
    result = generate(spec, opts(tmp_path / "out", mode="turns", max_turns=1), provider=provider)
    assert result.counts["rejected"] == {"elimination:stopwords_only": 1}
    assert result.counts["utterance_rejects"] == {"elimination:stopwords_only": 2}
    rejects = records(tmp_path / "out" / "rejects.jsonl")
    tasks = [r for r in rejects if r["kind"] != "utterance"]
    assert [r["reason"] for r in tasks] == ["elimination:stopwords_only"]
    assert tasks[0]["attempts"] == 2
    # each failed utterance is a rejects.jsonl line too, with its text
    utterances = [r for r in rejects if r["kind"] == "utterance"]
    assert [(u["role"], u["reason"], u["raw"]) for u in utterances] == [
        ("user", "elimination:stopwords_only", "..."),
        ("user", "elimination:stopwords_only", "?!"),
    ]
    assert all(u["task"] == tasks[0]["id"] for u in utterances)
    # the report counts them apart from the rejected conversations
    from fountain.report.counts import counts_section
    from fountain.report.load import load_dataset

    counts = counts_section(load_dataset(tmp_path / "out"))
    assert counts["rejected"] == {"elimination:stopwords_only": 1}
    assert counts["utterance_rejects"] == {"elimination:stopwords_only": 2}


def test_turns_mode_user_line_is_its_first_real_paragraph(spec, tmp_path):
    script = [
        "COUNSELEE:\n\nWe keep fighting about money in our marriage.\n\nCOUNSELOR: I see.",
        "Let us look at when the fights start.",
    ]
    generate(spec, opts(tmp_path / "out", mode="turns", max_turns=1), provider=ScriptedProvider(script))
    seed = records(tmp_path / "out" / "seeds.jsonl")[0]
    assert seed["messages"][0]["content"] == "We keep fighting about money in our marriage."
