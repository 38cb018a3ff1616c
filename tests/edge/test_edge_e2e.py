"""Loopback end to end: a data owner's edge (uvicorn in a thread, the REAL bundled embedder for the
private data) and a generator's Feedback run against it (fake provider) through the CLI.

The generator's own embedder is the test HashEmbedder: with --edge it embeds nothing private (only
its synthetic conversations, for the dedup stage), and the bundled model loaded twice in one
process would only make the test slower. The private data, with a canary, lives in the owner's
folder; the generator side is checked for it byte by byte (files, caches, prompts, logs, output).
"""

from __future__ import annotations

import json
import logging

import pytest

import fountain.embed.embedder
from edge_helpers import CANARY, TOKEN, candidates, edge_config
from fountain.cli import main
from fountain.edge.client import EdgeClient
from fountain.edge.server import EdgeThread
from fountain.providers.fake import FakeProvider
from framework_helpers import HashEmbedder, make_spec

pytestmark = pytest.mark.slow  # the bundled embedder: ~10 s to load on 2 cores


@pytest.fixture(scope="module")
def bundled():
    from fountain.embed.embedder import load_embedder
    from fountain.errors import FountainError

    try:
        return load_embedder(None, device="cpu")
    except FountainError as error:
        pytest.skip(f"bundled embedder unavailable: {error}")


@pytest.fixture
def generator(monkeypatch):
    """The generator's process: token in the environment, HashEmbedder for its dedup, and every
    prompt sent to the (fake) model recorded."""
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    monkeypatch.setattr(fountain.embed.embedder, "load_embedder", lambda name=None, **kw: HashEmbedder())
    prompts: list[str] = []
    original = FakeProvider.complete

    async def recording(self, request):
        prompts.append(request.prompt_text())
        return await original(self, request)

    monkeypatch.setattr(FakeProvider, "complete", recording)
    return prompts


def files_containing(root, needle: str) -> list[str]:
    forms = [needle.encode("utf-8"), needle.encode("utf-16-le"), needle.encode("utf-8").hex().encode()]
    return [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.is_file() and any(form in p.read_bytes() for form in forms)
    ]


def run_cli(folder, out, url, iterations: int) -> int:
    argv = ["run", "-t", str(folder), "-o", str(out), "--provider", "fake", "--seed", "3"]
    argv += ["--framework", "Feedback", "--rater", "PE", "--edge", url, "--iterations", str(iterations)]
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code)


def test_a_feedback_run_against_an_edge_never_sees_the_canary_and_matches_its_ledger(
    tmp_path, bundled, generator, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    config = edge_config(tmp_path, iterations=2, epsilon=4.0)
    gen_root = tmp_path / "generator"
    folder = make_spec(gen_root, seeds=1, derivations=1)
    with EdgeThread(config, embedder=bundled) as edge:
        assert run_cli(folder, gen_root / "out", edge.url, 2) == 0
        first = capfd.readouterr()
        edge_ledger = EdgeClient(edge.url).ledger()
        dataset = (gen_root / "out" / "dataset.jsonl").read_bytes()

        # The run's ledger is the edge's: same votes, same epsilon after each.
        privacy = json.loads((gen_root / "out" / "manifest.json").read_text())["privacy"]
        assert privacy["source"] == "edge" and len(privacy["edges"]) == 1
        mine = privacy["edges"][0]
        assert mine["edge"] == edge.url and mine["edge_id"] == edge_ledger["edge_id"]
        assert [(v["vote"], v["epsilon"]) for v in mine["votes"]] == [
            (v["vote"], v["epsilon"]) for v in edge_ledger["votes"]
        ]
        assert mine["epsilon"] == pytest.approx(edge_ledger["epsilon"]) and edge_ledger["votes_left"] == 0
        assert [v["iteration"] for v in mine["votes"]] == [1, 2]

        # A second run: the edge has no budget left, the run ends cleanly with the reason.
        assert run_cli(folder, gen_root / "out2", edge.url, 1) == 1
        second = capfd.readouterr()
        assert "budget for 0 more vote(s)" in second.err and "Traceback" not in second.err
        assert (gen_root / "out" / "dataset.jsonl").read_bytes() == dataset
        assert EdgeClient(edge.url).ledger()["votes"] == edge_ledger["votes"]

    # The private file is where the search would find the canary, and the only place.
    assert files_containing(tmp_path, CANARY) == ["owner/private.jsonl"]
    assert files_containing(gen_root, CANARY) == []
    assert generator and not any(CANARY in prompt for prompt in generator)
    logs = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    for text in (first.out, first.err, second.out, second.err, logs):
        assert CANARY not in text
    assert not any("private" in name for name in map(str, gen_root.rglob("*")))


def test_a_vote_refused_mid_run_ends_the_run_cleanly_and_a_resume_keeps_its_work(
    tmp_path, bundled, generator, capfd, monkeypatch
):
    config = edge_config(tmp_path, iterations=1, epsilon=2.0)
    folder = make_spec(tmp_path / "generator", seeds=1, derivations=1)
    out = tmp_path / "generator" / "out"
    with EdgeThread(config, embedder=bundled) as edge:
        # Another generator spends the owner's last vote between this run's budget check and its
        # vote: the edge itself must refuse (409).
        original = EdgeClient.vote
        spent = []

        def racing(self, conversations, k=1):
            if not spent:
                spent.append(original(EdgeClient(edge.url), {"marriage counsel": candidates(2)}))
            return original(self, conversations, k)

        monkeypatch.setattr(EdgeClient, "vote", racing)
        assert run_cli(folder, out, edge.url, 1) == 1
        err = capfd.readouterr().err
        assert "the edge refused the vote" in err and "budget" in err and "Traceback" not in err
        state = json.loads((out / "framework.json").read_text())
        population = next(r for r in state["rounds"] if r["round"] == 0)
        assert population["complete"] and population["population"]
        assert state.get("ledger", []) == []  # nothing was spent for this run
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "stopped" and "refused" in (manifest.get("stop_reason") or "")
    seeds = (out / "seeds.jsonl").read_bytes()

    # The owner grants more budget (same ledger, same delta): the same command resumes, keeps
    # its population and pays for no conversation twice.
    monkeypatch.setattr(EdgeClient, "vote", original)
    generator.clear()
    with EdgeThread(edge_config(tmp_path, iterations=2, epsilon=6.0), embedder=bundled) as edge:
        assert run_cli(folder, out, edge.url, 1) == 0
        ledger = EdgeClient(edge.url).ledger()
    assert (out / "seeds.jsonl").read_bytes().startswith(seeds)
    state = json.loads((out / "framework.json").read_text())
    assert [e["vote"] for e in state["ledger"]] == [2] and len(ledger["votes"]) == 2
    assert generator and all("Continue" in p for p in generator)  # no seed asked again


def test_a_restarted_edge_keeps_its_ledger_over_http(tmp_path, bundled, monkeypatch):
    monkeypatch.setenv("FOUNTAIN_EDGE_TOKEN", TOKEN)
    config = edge_config(tmp_path, iterations=3)
    with EdgeThread(config, embedder=bundled) as edge:
        EdgeClient(edge.url).vote({"marriage counsel": candidates(3)})
        before = EdgeClient(edge.url).ledger()
    with EdgeThread(config, embedder=bundled) as edge:
        after = EdgeClient(edge.url).ledger()
        wrong = EdgeClient(edge.url, token="not-the-token")
        with pytest.raises(Exception, match="refused the token"):
            wrong.ledger()
    assert after["votes"] == before["votes"] and after["votes_left"] == 2
