"""The generator's side: the checks of `fountain run --edge`, answers from an untrusted edge, an
unreachable edge, several owners combined, TLS with a private CA, and `fountain privacy --edge`."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pytest

from edge_helpers import CANARY, TOKEN, candidates, edge_config, owner_files
from fountain.cli import main
from fountain.edge.client import EdgeClient, EdgeError, EdgeVote, ask_edges, check_budgets, public_url
from fountain.edge.server import EdgeThread
from fountain.errors import FountainError, PrivacyBudgetError
from fountain.frameworks import plan_framework, run_framework
from fountain.providers.fake import FakeProvider
from fountain.spec.load import load_spec
from framework_helpers import HashEmbedder, make_spec, options

PE = dict(framework="Feedback", rater="PE")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (dict(framework="Filter", rater="PE"), "needs --framework Feedback"),
        (dict(PE, real_data="x.jsonl"), "--real-data is the data owner's"),
        (dict(PE, epsilon=4.0), "--epsilon is the data owner's"),
        (dict(PE, sigma=1.0), "--sigma"),
        (dict(PE, edge=("http://u:p@127.0.0.1:1",)), "no credentials"),
        (dict(PE, edge=("ftp://127.0.0.1:1",)), "http:// or https://"),
        (dict(PE, edge=("http://127.0.0.1:9/", "http://127.0.0.1:9")), "named twice"),
    ],
)
def test_run_edge_checks_are_made_before_anything_is_spent(tmp_path, extra, words):
    spec = load_spec(make_spec(tmp_path))
    extra = dict(extra)
    extra.setdefault("edge", ("http://127.0.0.1:9",))
    with pytest.raises(FountainError) as info:
        plan_framework(spec, options(tmp_path / "out", **extra))
    assert words in str(info.value) and info.value.location in ("--edge", "--real-data", "--epsilon", "--sigma")


def test_an_edge_plan_needs_no_private_data_and_warns_about_plain_http(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    plan = plan_framework(spec, options(tmp_path / "out", edge=("http://10.1.2.3:8765", "https://b.example"), **PE))
    assert plan.real is None and plan.privacy is None and plan.edges == ("http://10.1.2.3:8765", "https://b.example")
    assert "voted by 2 edge service(s)" in plan.describe()
    assert any("plain http" in note and "10.1.2.3" in note for note in plan.notes)
    assert not any("b.example" in note for note in plan.notes)


def test_public_url_drops_credentials_query_and_slash():
    assert public_url("https://u:secret@host.example:8443/base/?t=1#x") == "https://host.example:8443/base"


def vote_answer(**changes):
    data = {
        "vote": 1,
        "sigma": 2.0,
        "histograms": {"c": [1.0, 0.5]},
        "ledger": {"edge_id": "e1", "epsilon": 1.0, "epsilon_budget": 4.0, "delta": 1e-5},
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "answer",
    [
        vote_answer(sigma=0),
        vote_answer(sigma="2"),
        vote_answer(histograms={"c": [1.0]}),
        vote_answer(histograms={"other": [1.0, 2.0]}),
        vote_answer(histograms={"c": [1.0, float("nan")]}),
        vote_answer(histograms={"c": [True, 1.0]}),
        vote_answer(ledger={}),
        {},
    ],
)
def test_a_malformed_answer_from_an_edge_is_an_edge_error(answer):
    with pytest.raises(EdgeError, match="malformed"):
        EdgeVote.parse(answer, {"c": 2}, "http://edge")


def test_a_well_formed_answer_parses():
    vote = EdgeVote.parse(vote_answer(), {"c": 2}, "http://edge")
    assert vote.sigma == 2.0 and vote.histograms["c"].tolist() == [1.0, 0.5] and vote.receipt["epsilon"] == 1.0


def test_an_unreachable_edge_ends_the_cli_with_a_message(tmp_path, capfd, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = make_spec(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(
            ["run", "-t", str(folder), "-o", str(tmp_path / "out"), "--provider", "fake"]
            + ["--framework", "Feedback", "--rater", "PE", "--edge", f"http://127.0.0.1:{port}"]
        )
    err = capfd.readouterr().err
    assert info.value.code == 1 and "cannot reach the edge service" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "seeds.jsonl").exists()  # refused before a token was spent


def test_two_owners_vote_with_their_own_budgets_and_the_histograms_add_up(tmp_path, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    first = edge_config(tmp_path / "a", iterations=2, epsilon=4.0)
    second = edge_config(tmp_path / "b", iterations=1, epsilon=8.0, token="another-token-" + "y" * 20)
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN_2", "another-token-" + "y" * 20)
    with EdgeThread(first, embedder=HashEmbedder()) as a, EdgeThread(second, embedder=HashEmbedder()) as b:
        clients = [EdgeClient(a.url, index=1), EdgeClient(b.url, index=2)]
        receipts = []
        combined = ask_edges(clients, {"marriage counsel": candidates(4)}, on_receipt=receipts.append)
        assert combined.sigma == pytest.approx(np.hypot(a.box.sigma, b.box.sigma))
        assert [r["edge"] for r in receipts] == [a.url, b.url] and receipts[0]["epsilon"] < 4.0
        assert combined.histograms["marriage counsel"].shape == (4,)
        # The second owner's single vote is spent: it refuses, whatever the first one has left.
        with pytest.raises(PrivacyBudgetError, match="budget for 0 more"):
            check_budgets(clients, 1)
        with pytest.raises(PrivacyBudgetError, match="refused the vote"):
            ask_edges(clients, {"marriage counsel": candidates(2)})
        assert len(EdgeClient(a.url, index=1).ledger()["votes"]) == 2  # the first owner answered first


def test_a_feedback_run_with_two_edges_records_each_owners_epsilon(tmp_path, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    first = edge_config(tmp_path / "a", iterations=1, epsilon=2.0)
    second = edge_config(tmp_path / "b", iterations=1, epsilon=6.0)
    spec = load_spec(make_spec(tmp_path / "gen", seeds=1, derivations=1))
    with EdgeThread(first, embedder=HashEmbedder()) as a, EdgeThread(second, embedder=HashEmbedder()) as b:
        result = run_framework(
            spec,
            options(tmp_path / "gen" / "out", iterations=1, edge=(a.url, b.url), **PE),
            provider=FakeProvider(),
            embedder=HashEmbedder(),
        )
        ledgers = {c.name: c.ledger() for c in (EdgeClient(a.url), EdgeClient(b.url))}
    assert result.dataset_records > 0
    privacy = json.loads((tmp_path / "gen" / "out" / "manifest.json").read_text())["privacy"]
    reported = {e["edge"]: e["epsilon"] for e in privacy["edges"]}
    assert reported == {url: pytest.approx(ledger["epsilon"]) for url, ledger in ledgers.items()}
    assert reported[a.url] == pytest.approx(2.0) and reported[b.url] == pytest.approx(6.0)
    assert privacy["epsilon"] == pytest.approx(6.0)
    # Both owners' files hold the canary; nothing on the generator's side does.
    for path in (tmp_path / "gen").rglob("*"):
        assert not path.is_file() or CANARY.encode() not in path.read_bytes()
    assert CANARY in (tmp_path / "a" / "owner" / "private.jsonl").read_text()


def test_an_owner_out_of_budget_costs_the_other_owners_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    spec = load_spec(make_spec(tmp_path / "gen", seeds=1, derivations=1))
    with (
        EdgeThread(edge_config(tmp_path / "a", iterations=2), embedder=HashEmbedder()) as a,
        EdgeThread(edge_config(tmp_path / "b", iterations=1), embedder=HashEmbedder()) as b,
    ):
        with pytest.raises(PrivacyBudgetError, match="budget for 1 more vote"):
            run_framework(
                spec,
                options(tmp_path / "gen" / "out", iterations=2, edge=(a.url, b.url), **PE),
                provider=FakeProvider(),
                embedder=HashEmbedder(),
            )
        assert EdgeClient(a.url).ledger()["votes"] == []  # refused before the population was made
        assert not (tmp_path / "gen" / "out" / "seeds.jsonl").exists()


def self_signed(folder):
    """A CA-less self-signed certificate for 127.0.0.1 (cryptography), as a data owner would make."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_with_the_owners_certificate(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    cert, key = self_signed(tmp_path)
    config = edge_config(tmp_path, tls_cert=cert, tls_key=key)
    with EdgeThread(config, embedder=HashEmbedder()) as edge:
        assert edge.url.startswith("https://")
        with pytest.raises(EdgeError, match="cannot reach"):
            EdgeClient(edge.url).ledger()  # an unknown certificate is not trusted
        monkeypatch.setenv("FOUNTAIN_EDGE_CA", str(cert))
        assert EdgeClient(edge.url).ledger()["votes_left"] == 2


def test_privacy_edge_shows_the_ledger(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    owner_files(tmp_path)
    with EdgeThread(edge_config(tmp_path), embedder=HashEmbedder()) as edge:
        EdgeClient(edge.url).vote({"marriage counsel": candidates(3)})
        with pytest.raises(SystemExit) as info:
            main(["privacy", "--edge", edge.url])
        text = capfd.readouterr().out
        assert info.value.code == 0 and "1 vote(s), 1 left" in text and "vote 1:" in text
        with pytest.raises(SystemExit):
            main(["privacy", "--edge", edge.url, "--json"])
        assert json.loads(capfd.readouterr().out)["votes_left"] == 1
        monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", "wrong")
        with pytest.raises(SystemExit) as info:
            main(["privacy", "--edge", edge.url])
        assert info.value.code == 1 and "refused the token" in capfd.readouterr().err


def test_an_owner_spent_out_while_the_population_is_made_stops_the_run_before_any_vote(tmp_path, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    spec = load_spec(make_spec(tmp_path / "gen", seeds=1, derivations=1))
    out = tmp_path / "gen" / "out"
    with EdgeThread(edge_config(tmp_path, iterations=1), embedder=HashEmbedder()) as edge:
        original = FakeProvider.complete
        spent: list = []

        async def racing(self, request):
            if not spent:  # another generator takes the owner's last vote meanwhile
                spent.append(EdgeClient(edge.url).vote({"marriage counsel": candidates(2)}))
            return await original(self, request)

        monkeypatch.setattr(FakeProvider, "complete", racing)
        with pytest.raises(PrivacyBudgetError, match="budget for 0 more vote"):
            run_framework(
                spec,
                options(out, iterations=1, edge=(edge.url,), **PE),
                provider=FakeProvider(),
                embedder=HashEmbedder(),
            )
        assert len(EdgeClient(edge.url).ledger()["votes"]) == 1  # only the other generator's
    state = json.loads((out / "framework.json").read_text())
    assert next(r for r in state["rounds"] if r["round"] == 0)["population"] and state.get("ledger", []) == []
