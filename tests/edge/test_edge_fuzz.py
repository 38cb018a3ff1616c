"""Fuzzed request bodies through the real ASGI app never produce a 500 or a traceback: every
answer is JSON, and every refusal a 4xx with a message."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from edge_helpers import TOKEN, open_box
from fountain.edge.app import create_app

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "bot", ""]), "content": st.text(max_size=40)}
    )
    | json_values,
    max_size=4,
)
blocks = st.one_of(
    st.fixed_dictionaries({"conversations": st.lists(messages, max_size=5)}),
    st.fixed_dictionaries(
        {"embeddings": st.lists(st.lists(st.floats(width=32) | st.integers(), min_size=0, max_size=6), max_size=4)}
    ),
    json_values,
)
near_valid = st.fixed_dictionaries(
    {"categories": st.dictionaries(st.sampled_from(["marriage counsel", "other", ""]), blocks, max_size=3)},
    optional={
        "k": json_values | st.integers(-3, 40),
        "embedder": st.sampled_from(["test-hash-bow", "x"]) | json_values,
    },
)


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    box = open_box(tmp_path_factory.mktemp("fuzz"), epsilon=1000.0, iterations=100_000, max_candidates=50)
    return TestClient(create_app(box, token=TOKEN, max_body_bytes=50_000), raise_server_exceptions=False)


def check(answer) -> None:
    assert answer.status_code < 500, answer.text
    data = answer.json()  # always JSON, never a traceback page
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert isinstance(data["error"], str) and data["error"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_random_bytes_get_a_4xx(http, body):
    check(http.post("/vote", content=body, headers=AUTH))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_random_json_gets_an_answer_never_a_500(http, body):
    check(http.post("/vote", content=json.dumps(body).encode(), headers=AUTH))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=near_valid)
def test_almost_valid_votes_get_an_answer_never_a_500(http, body):
    check(http.post("/vote", content=json.dumps(body).encode(), headers=AUTH))


good_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text(max_size=60)}
)
valid_votes = st.fixed_dictionaries(
    {
        "categories": st.dictionaries(
            st.text(max_size=12),
            st.fixed_dictionaries(
                {"conversations": st.lists(st.lists(good_message, min_size=1, max_size=3), min_size=1, max_size=5)}
            ),
            min_size=1,
            max_size=3,
        )
    },
    optional={"k": st.integers(1, 32)},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=valid_votes)
def test_any_valid_vote_with_any_text_is_answered(http, body):
    answer = http.post("/vote", content=json.dumps(body).encode(), headers=AUTH)
    check(answer)
    assert answer.status_code == 200
    sizes = {c: len(b["conversations"]) for c, b in body["categories"].items()}
    assert {c: len(h) for c, h in answer.json()["histograms"].items()} == sizes
