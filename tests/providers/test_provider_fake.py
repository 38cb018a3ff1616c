"""The fake provider: deterministic schema-valid answers, replay, scripted answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fountain.errors import FountainError, RateLimitError
from fountain.generation.rules import Accepted, Rules
from fountain.generation.shape import request_schema
from fountain.generation.validate import validate_completion
from fountain.providers.base import Message, ProviderConfig, Request
from fountain.providers.fake import FakeProvider, ScriptedProvider, load_replay

JANUS = Path("/work/shared/corpus/janus")
PROMPT = (
    "COUNSELOR ||--|{ COUNSELEE : provides counseling to. Topic: marriage guidance, weekly sessions. "
    "The user plays COUNSELEE and the assistant plays COUNSELOR."
)


def ask(provider, request):
    return asyncio.run(provider.complete(request))


def _request(schema=None, index=0, seed=None, purpose="seed", prompt=PROMPT):
    return Request(messages=(Message("user", prompt),), schema=schema, sample_index=index, seed=seed, purpose=purpose)


@pytest.mark.parametrize("lo,hi", [(1, 1), (2, 5), (3, 8), (6, 6)])
def test_answers_are_schema_valid_within_bounds(lo, hi):
    rules = Rules(min_turns=lo, max_turns=hi)
    provider = FakeProvider()
    for index in range(6):
        completion = ask(provider, _request(request_schema(rules), index))
        result = validate_completion(completion.text, spec_or_rules=rules)
        assert isinstance(result, Accepted), (completion.text, result)
        assert lo <= len(result.turns) <= hi
        assert completion.data == json.loads(completion.text)
        assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


def test_a_continued_conversation_does_not_name_the_topic_again():
    # Janus derivation prompts show the diagram (its "Topic:" line) before the conversation being
    # continued, whose first answer already said the topic sentence: saying it again is a repeat
    # the quality gates reject (gate:repetition), which cost every such derivation a retry.
    first = ask(FakeProvider(), _request(request_schema(Rules(min_turns=1, max_turns=1))))
    assert "part of our work on marriage guidance" in first.text
    continued = PROMPT + " Continue this conversation: " + first.text
    for index in range(6):
        answer = ask(FakeProvider(), _request(request_schema(Rules(min_turns=1, max_turns=3)), index, prompt=continued))
        assert "our work on" not in answer.text


def test_instruct_shape():
    rules = Rules(type="instruct")
    completion = ask(FakeProvider(), _request(request_schema(rules)))
    assert set(json.loads(completion.text)) == {"conversation"}
    assert isinstance(validate_completion(completion.text, spec_or_rules=rules), Accepted)


def test_deterministic_and_request_dependent():
    schema = request_schema(Rules(min_turns=1, max_turns=4))
    a = ask(FakeProvider(), _request(schema, 0, seed=1)).text
    assert a == ask(FakeProvider(), _request(schema, 0, seed=1)).text
    assert a != ask(FakeProvider(), _request(schema, 1, seed=1)).text
    assert a != ask(FakeProvider(), _request(schema, 0, seed=2)).text


def test_words_and_roles_come_from_the_prompt():
    text = ask(FakeProvider(), _request(request_schema(Rules(min_turns=2, max_turns=2)))).text
    assert "counsel" in text.lower() or "guidance" in text.lower() or "weekly" in text.lower()
    assert "erdiagram" not in text.lower()


def test_turn_mode_utterances():
    provider = FakeProvider()
    user = ask(provider, _request(None, purpose="seed:user")).text
    assistant = ask(provider, _request(None, purpose="seed:assistant")).text
    assert user and assistant and user != assistant
    assert not user.startswith("{")
    assert len(provider.requests) == 2 and provider.requests[0].purpose == "seed:user"


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not present")
def test_replay_janus_outputs_in_order_cycling():
    path = JANUS / "marriage_counsel" / "outputs.json"
    recorded = json.loads(path.read_text())
    provider = FakeProvider(ProviderConfig(provider="fake", replay=str(path)))
    schema = request_schema(Rules(min_turns=1, max_turns=8))
    answers = [json.loads(ask(provider, _request(schema, i)).text) for i in range(len(recorded) + 1)]
    assert answers[0] == {"conversations": recorded[0]["conversations"]}
    assert answers[-1] == answers[0]  # cycles
    assert provider.model == "replay" and "replay" in provider.identity()


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not present")
def test_replay_instruct_as_instruct_shape():
    path = JANUS / "marriage_counsel_instruct" / "outputs.json"
    provider = FakeProvider(ProviderConfig(provider="fake", replay=str(path)))
    text = ask(provider, _request(request_schema(Rules(type="instruct")))).text
    assert set(json.loads(text)) == {"conversation"}


def test_replay_jsonl_formats(tmp_path):
    path = tmp_path / "rec.jsonl"
    lines = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u1"},
                {"role": "assistant", "content": "a1"},
            ],
            "metadata": {},
        },
        {"conversations": [{"from": "human", "value": "u2"}, {"from": "gpt", "value": "a2"}]},
        {"text": "raw answer, not JSON"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert load_replay(path) == [
        [{"user": "u1", "assistant": "a1"}],
        [{"user": "u2", "assistant": "a2"}],
        "raw answer, not JSON",
    ]
    provider = FakeProvider(ProviderConfig(provider="fake", replay=str(path)))
    schema = request_schema(Rules())
    texts = [ask(provider, _request(schema)).text for _ in range(3)]
    assert json.loads(texts[0]) == {"conversations": [{"user": "u1", "assistant": "a1"}]}
    assert texts[2] == "raw answer, not JSON"
    # turn by turn: the recorded utterances of each side
    assert ask(provider, _request(None, purpose="seed:user")).text == "u1"
    assert ask(provider, _request(None, purpose="seed:assistant")).text == "a1"


def test_a_short_replay_file_says_once_that_it_starts_again(tmp_path, caplog):
    path = tmp_path / "rec.jsonl"
    path.write_text(
        "\n".join(json.dumps({"conversations": [{"user": f"u{i}", "assistant": f"a{i}"}]}) for i in range(2)) + "\n"
    )
    provider = FakeProvider(ProviderConfig(provider="fake", replay=str(path)))
    schema = request_schema(Rules())
    with caplog.at_level("WARNING", logger="fountain.providers.fake"):
        for _ in range(2):
            ask(provider, _request(schema))
        assert not caplog.records
        texts = [ask(provider, _request(schema)).text for _ in range(3)]
    assert json.loads(texts[0]) == {"conversations": [{"user": "u0", "assistant": "a0"}]}
    assert len(caplog.records) == 1
    assert "2 recorded output(s)" in caplog.text and str(path) in caplog.text


@pytest.mark.parametrize("content", ["", "{not json", '[{"nothing": 1}]'])
def test_bad_replay_files(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(FountainError):
        FakeProvider(ProviderConfig(provider="fake", replay=str(path)))
    with pytest.raises(FountainError):
        FakeProvider(ProviderConfig(provider="fake", replay=str(tmp_path / "missing.json")))


def test_scripted_provider():
    provider = ScriptedProvider(["first", ("second", "length"), RateLimitError("slow down")])
    assert ask(provider, _request()).text == "first"
    completion = ask(provider, _request())
    assert (completion.text, completion.finish_reason) == ("second", "length")
    with pytest.raises(RateLimitError):
        ask(provider, _request())
    assert ask(provider, _request()).text == "first"  # cycles
    assert len(provider.requests) == 4


def test_registry_builds_the_fake_provider():
    from fountain.providers import create_provider

    provider = create_provider(ProviderConfig(provider="fake"))
    assert isinstance(provider, FakeProvider) and provider.name == "fake"
