"""fountain.fastjson: compact, deterministic JSON that never refuses a value json.loads produced."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fountain import fastjson
from fountain.run.journal import Journal, read_journal


def _json_of(leaves, max_leaves: int = 20):
    """JSON values: lists and objects nesting ``leaves``."""
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=max_leaves,
    )


json_values = _json_of(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_round_trips_through_json_loads(value):
    data = fastjson.dumps_bytes(value)
    assert json.loads(data) == value
    assert fastjson.dumps(value) == data.decode("utf-8")
    assert b"\n" not in data  # one journal line per record


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_loads_agrees_with_json_loads(value):
    text = json.dumps(value)
    if any(abs(n) >= 2**63 for n in _integers(value)):
        return  # documented: orjson makes such an integer a float
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(text.encode("utf-8")) == json.loads(text)


def _integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _integers(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _integers(item)


def test_loads_takes_what_only_json_loads_takes_and_refuses_the_rest():
    assert fastjson.loads('"cut \\ud83d"') == "cut \ud83d"
    assert fastjson.loads(b'{"x": 1e400}') == {"x": float("inf")}
    assert str(fastjson.loads("[NaN]")[0]) == "nan"
    for bad in ('{"a": 1} trailing', "", "{'single': 1}", b"\xff"):
        try:
            fastjson.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


def test_compact_utf8_and_key_order_kept():
    assert fastjson.dumps({"b": 1, "a": ["é", None, True]}) == '{"b":1,"a":["é",null,true]}'


def test_values_orjson_refuses_still_encode():
    big = 2**70
    assert json.loads(fastjson.dumps_bytes({"n": big})) == {"n": big}
    lone = "half a pair \ud800 here"  # what json.loads makes of a model's "\\ud800"
    assert json.loads(fastjson.dumps_bytes({"text": lone})) == {"text": lone}
    assert json.loads(fastjson.dumps_bytes({1: "x"})) == {"1": "x"}


def test_a_lone_surrogate_in_an_answer_is_journaled_not_a_crash(tmp_path):
    record = {"id": "seed-1", "messages": [{"role": "user", "content": json.loads('"hi \\ud83d"')}]}
    with Journal(tmp_path / "seeds.jsonl", fsync=False) as journal:
        journal.append(record)
    assert read_journal(tmp_path / "seeds.jsonl").records == [record]


def test_a_completion_never_holds_a_lone_surrogate():
    from fountain.providers.base import Completion

    assert Completion(text="cut \ud83d off, kept \ud83d\ude00").text == "cut \ufffd off, kept \U0001f600"
    assert Completion(text="plain é").text == "plain é"


def test_a_run_survives_a_lone_surrogate_answer_and_replays_it_from_the_cache(tmp_path):
    """A model answer holding "\\ud83d" (half an emoji) is stored, exported and replayed as is."""
    from fountain import generate
    from fountain.providers.base import Completion
    from fountain.run.options import RunOptions
    from fountain.spec.load import load_spec
    from fountain.types import Usage
    from run_helpers import make_spec

    raw = (
        '{"conversations": [{"user": "How do we split rent \\ud83d fairly in our marriage?", '
        '"assistant": "List what each of you earns \ud83d and spends."}]}'
    )

    class HalfEmojiProvider:
        name, model = "openai", "gpt-4o-mini"
        calls = 0

        def identity(self):
            return {"provider": self.name, "model": self.model}

        async def complete(self, request):
            HalfEmojiProvider.calls += 1
            return Completion(text=raw, data=json.loads(raw), finish_reason="stop", usage=Usage(5, 5))

        async def aclose(self):
            pass

    spec = load_spec(make_spec(tmp_path))
    out = tmp_path / "out"

    def go():
        return generate(
            spec,
            RunOptions(
                output=out,
                mode="json",
                seed=1,
                fsync=False,
                quiet=True,
                seeds_per_direction=1,
                derivations_per_direction=0,
            ),
            provider=HalfEmojiProvider(),
        )

    first = go()
    # Both seeds get the same answer: Gen's dedup keeps one (as `fountain run` does).
    assert first.dataset_records == 1 and HalfEmojiProvider.calls == 2
    dataset = (out / "dataset.jsonl").read_bytes()
    first_record = json.loads(dataset.decode("utf-8").splitlines()[0])  # valid UTF-8, escaped
    assert first_record["messages"][0]["content"] == "How do we split rent \ud83d fairly in our marriage?"
    (out / "dataset.jsonl").unlink()
    again = go()
    assert HalfEmojiProvider.calls == 2  # every answer came from the cache
    assert again.dataset_records == 1 and (out / "dataset.jsonl").read_bytes() == dataset


_JSON_VALUES = _json_of(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet='0123456789ab\\"é\ud800', max_size=30),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_JSON_VALUES)
def test_loads_exact_reads_what_json_loads_reads_big_integers_included(value):
    text = json.dumps(value)
    expected = json.loads(text)
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            got = fastjson.loads_exact(data)
        except ValueError:
            continue  # bytes holding a lone surrogate: json.loads refuses those too (checked below)
        assert repr(got) == repr(expected)
        assert type(got) is type(expected)


@pytest.mark.parametrize("text", ['{"a": 1', "[1,]", b'{"a": "\xff"}', "", "NaN x"])
def test_loads_exact_refuses_what_json_loads_refuses(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads_exact(text)
