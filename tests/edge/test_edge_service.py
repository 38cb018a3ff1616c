"""The edge service over real HTTP semantics (Starlette's TestClient runs the ASGI app): auth,
limits, bad input as 4xx, the ledger charged and persisted before the noise, refusal over budget,
a restart that keeps the ledger. The edge embeds with the test HashEmbedder here (the bundled
embedder runs in test_edge_e2e.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.testclient import TestClient

import fountain.edge.votes
from edge_helpers import TOKEN, candidates, edge_config, open_box
from fountain.edge.app import create_app
from fountain.edge.config import EdgeConfig
from fountain.edge.ledger import LEDGER_FILE
from fountain.errors import FountainError

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(box, *, token=TOKEN, max_body_bytes=1 << 20) -> TestClient:
    return TestClient(create_app(box, token=token, max_body_bytes=max_body_bytes), raise_server_exceptions=False)


def vote_body(n: int = 4, **extra) -> dict:
    return {"k": 1, "categories": {"marriage counsel": {"conversations": candidates(n)}}, **extra}


def test_a_vote_returns_one_noisy_count_per_candidate_and_charges_the_ledger(tmp_path):
    box = open_box(tmp_path)
    http = client_for(box)
    answer = http.post("/vote", json=vote_body(5), headers=AUTH)
    assert answer.status_code == 200
    data = answer.json()
    assert len(data["histograms"]["marriage counsel"]) == 5
    assert data["vote"] == 1 and data["sigma"] == pytest.approx(box.sigma)
    ledger = http.get("/ledger", headers=AUTH).json()
    assert len(ledger["votes"]) == 1 and ledger["epsilon"] > 0 and ledger["votes_left"] == 1
    on_disk = json.loads((tmp_path / "owner" / "state" / LEDGER_FILE).read_text())
    assert [v["vote"] for v in on_disk["votes"]] == [1]
    assert "private" not in json.dumps(data) and "records" not in json.dumps(ledger)


def test_the_ledger_is_on_disk_before_the_noise_is_drawn(tmp_path, monkeypatch):
    box = open_box(tmp_path)
    seen = []
    real = fountain.edge.votes.secrets.randbits

    def entropy(bits):
        seen.append(len(json.loads((tmp_path / "owner" / "state" / LEDGER_FILE).read_text())["votes"]))
        return real(bits)

    monkeypatch.setattr(fountain.edge.votes.secrets, "randbits", entropy)
    assert client_for(box).post("/vote", json=vote_body(), headers=AUTH).status_code == 200
    assert seen == [1]


def test_the_noise_comes_from_the_os_not_from_the_request(tmp_path):
    box = open_box(tmp_path, epsilon=50.0, iterations=4)
    http = client_for(box)
    first = http.post("/vote", json=vote_body(6), headers=AUTH).json()["histograms"]["marriage counsel"]
    second = http.post("/vote", json=vote_body(6), headers=AUTH).json()["histograms"]["marriage counsel"]
    assert first != second
    # A client cannot name a seed.
    refused = http.post("/vote", json=vote_body(6, seed=1), headers=AUTH)
    assert refused.status_code == 422 and "seed" in refused.json()["error"]


def test_a_vote_over_the_budget_is_refused_with_409_and_costs_nothing(tmp_path):
    box = open_box(tmp_path, iterations=2)
    http = client_for(box)
    for _ in range(2):
        assert http.post("/vote", json=vote_body(), headers=AUTH).status_code == 200
    before = (tmp_path / "owner" / "state" / LEDGER_FILE).read_bytes()
    refused = http.post("/vote", json=vote_body(), headers=AUTH)
    assert refused.status_code == 409
    assert "budget" in refused.json()["error"] and "histograms" not in refused.json()
    assert (tmp_path / "owner" / "state" / LEDGER_FILE).read_bytes() == before
    assert http.get("/ledger", headers=AUTH).json()["votes_left"] == 0


def test_a_restarted_edge_keeps_its_ledger(tmp_path):
    box = open_box(tmp_path, iterations=2)
    assert client_for(box).post("/vote", json=vote_body(), headers=AUTH).status_code == 200
    again = open_box(tmp_path, iterations=2)
    assert again.ledger.edge_id == box.ledger.edge_id
    assert len(again.ledger.votes) == 1 and again.ledger.epsilon == pytest.approx(box.ledger.epsilon)
    http = client_for(again)
    assert http.post("/vote", json=vote_body(), headers=AUTH).status_code == 200
    assert http.post("/vote", json=vote_body(), headers=AUTH).status_code == 409


def test_a_restart_with_another_delta_is_refused(tmp_path):
    open_box(tmp_path, delta=1e-3)
    with pytest.raises(FountainError, match="delta"):
        open_box(tmp_path, delta=1e-4)


def test_a_damaged_ledger_stops_the_service_instead_of_forgetting(tmp_path):
    open_box(tmp_path)
    (tmp_path / "owner" / "state" / LEDGER_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(FountainError, match="damaged"):
        open_box(tmp_path)


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic " + TOKEN, "Bearer"])
def test_a_wrong_or_missing_token_gets_401(tmp_path, header):
    http = client_for(open_box(tmp_path))
    headers = {"Authorization": header} if header else {}
    for method, path in (("get", "/ledger"), ("get", "/info"), ("post", "/vote")):
        answer = getattr(http, method)(path, headers=headers, **({"json": vote_body()} if method == "post" else {}))
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert http.get("/health").status_code == 200
    assert not (tmp_path / "owner" / "state" / LEDGER_FILE).read_text().count('"vote":')


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"categories": {"c": {"embeddings": [[NaN]]}}, "embedder": "test-hash-bow"}', 400, "not valid JSON"),
        (json.dumps({"categories": {}}).encode(), 422, "categories"),
        (json.dumps(vote_body(k=0)).encode(), 422, "k must"),
        (json.dumps({"categories": {"c": {"conversations": [[{"role": "x", "content": "y"}]]}}}).encode(), 422, "role"),
        (json.dumps({"categories": {"c": {"embeddings": [[0.1] * 512]}}}).encode(), 422, "embedder"),
        (
            json.dumps({"categories": {"c": {"embeddings": [[0.1] * 512]}}, "embedder": "other"}).encode(),
            422,
            "send conversations",
        ),
        (
            json.dumps({"categories": {"c": {"embeddings": [[0.1] * 384]}}, "embedder": "test-hash-bow"}).encode(),
            422,
            "wrong dimension",
        ),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message_and_costs_nothing(tmp_path, body, status, words):
    box = open_box(tmp_path)
    answer = client_for(box).post("/vote", content=body, headers=AUTH)
    assert answer.status_code == status and words in answer.json()["error"]
    assert box.ledger.votes == []


def test_embeddings_of_the_same_embedder_are_accepted(tmp_path):
    box = open_box(tmp_path)
    vectors = np.random.default_rng(0).normal(size=(3, 512)).tolist()
    body = {"categories": {"marriage counsel": {"embeddings": vectors}}, "embedder": "test-hash-bow"}
    answer = client_for(box).post("/vote", json=body, headers=AUTH)
    assert answer.status_code == 200 and len(answer.json()["histograms"]["marriage counsel"]) == 3


def test_too_many_candidates_or_too_large_a_body_gets_413(tmp_path):
    config = edge_config(tmp_path, max_candidates=5)
    box = open_box(tmp_path, max_candidates=5)
    assert box.max_candidates == config.max_candidates
    http = client_for(box, max_body_bytes=4000)
    too_many = http.post("/vote", json=vote_body(6), headers=AUTH)
    assert too_many.status_code == 413 and "at most 5" in too_many.json()["error"]
    too_big = http.post("/vote", content=b" " * 5000, headers=AUTH)
    assert too_big.status_code == 413
    assert box.ledger.votes == []


def test_unknown_routes_and_methods_get_json_4xx(tmp_path):
    http = client_for(open_box(tmp_path))
    assert http.get("/nope", headers=AUTH).status_code == 404
    assert http.get("/vote", headers=AUTH).status_code == 405
    assert "error" in http.delete("/ledger", headers=AUTH).json()


def test_a_non_loopback_host_without_a_token_is_refused(tmp_path):
    with pytest.raises(FountainError, match="without a token"):
        edge_config(tmp_path, host="0.0.0.0", token=None)
    assert edge_config(tmp_path, host="0.0.0.0").host == "0.0.0.0"
    assert edge_config(tmp_path, host="::1", token=None).token is None


def test_an_infinite_or_zero_epsilon_is_refused(tmp_path):
    for epsilon in (0.0, float("inf")):
        with pytest.raises(FountainError, match="epsilon"):
            EdgeConfig(real_data=tmp_path / "x", epsilon=epsilon, iterations=1, state_dir=tmp_path)


def test_concurrent_votes_for_the_last_budget_get_one_answer_and_one_refusal(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fountain.errors import PrivacyBudgetError

    box = open_box(tmp_path, iterations=1)
    ballot = box.parse(vote_body(3))

    def attempt(_):
        try:
            return box.vote(ballot)["vote"]
        except PrivacyBudgetError:
            return "refused"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(map(str, outcomes)) == ["1", "refused", "refused", "refused"]
    assert len(json.loads((tmp_path / "owner" / "state" / LEDGER_FILE).read_text())["votes"]) == 1
