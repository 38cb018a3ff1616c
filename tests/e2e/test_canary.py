"""Canary: a unique private conversation must leave no trace in anything a run writes or says.

A conversation holding a random token is placed in the private data. After a Feedback (PE) run
(fake provider, test embedder), the token must appear in no file under the output folder (the
SQLite cache and embedding cache read as bytes), no log record, nothing printed, and no request
sent to the model. The same for a Filter run with RF (not private, but it must not copy text
either), and for the errors a broken private file causes.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest

from fountain.cli import main
from fountain.errors import RealDataError
from fountain.frameworks import plan_framework, run_framework
from fountain.providers.fake import FakeProvider
from fountain.spec.load import load_spec
from framework_helpers import (
    HashEmbedder,
    make_spec,
    marriage_real,
    options,
    real_record,
    write_real,
)

CANARY = f"CANARY-{secrets.token_hex(12)}"


def canary_rows() -> list[dict]:
    rows = marriage_real(10)
    # The canary is written like the other private conversations, so it wins votes like them.
    rows.insert(
        3,
        real_record(
            f"My partner and I keep arguing about money ({CANARY}). What should we do?",
            f"Let us look at what money means to each of you ({CANARY}), then agree on one small step for this week.",
        ),
    )
    return rows


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` whose bytes contain ``needle`` (UTF-8, UTF-16 or hex-encoded)."""
    forms = [needle.encode("utf-8"), needle.encode("utf-16-le"), needle.encode("utf-8").hex().encode()]
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if any(form in data for form in forms):
                hits.append(str(path.relative_to(root)))
    return hits


def private_vector_keys(out: Path) -> set[bytes]:
    """Keys of embeddings.sqlite that belong to private conversations: the cache stores only
    sha256 keys and vectors, so a grep cannot see private entries; recompute their keys instead."""
    import sqlite3

    from fountain.embed.embedder import CachedEmbedder, conversation_chunks
    from fountain.raters.realdata import load_real_data

    probe = CachedEmbedder(HashEmbedder())
    private = set()
    for item in load_real_data(out.parent / "private" / "real.jsonl"):
        private |= {probe._key(chunk) for chunk in conversation_chunks(probe, item.turns)}
    with sqlite3.connect(out / "embeddings.sqlite") as db:
        stored = {bytes(row[0]) for row in db.execute("SELECT key FROM vectors")}
    assert stored  # synthetic conversations were cached
    return stored & private


def assert_no_canary(out: Path, provider: FakeProvider, texts: list[str]) -> None:
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert {"cache.sqlite", "embeddings.sqlite", "manifest.json", "dataset.jsonl", "framework.json"} <= set(files)
    assert files_containing(out, CANARY) == []
    assert private_vector_keys(out) == set()
    for request in provider.requests:
        assert CANARY not in request.prompt_text()
    for text in texts:
        assert CANARY not in text


def test_the_search_finds_the_canary_where_it_is(tmp_path):
    # The check below must be able to fail: the same search finds the canary in the private file.
    write_real(tmp_path / "real.jsonl", canary_rows())
    assert files_containing(tmp_path, CANARY) == ["real.jsonl"]


def test_a_feedback_run_leaves_no_trace_of_the_canary(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    (tmp_path / "private").mkdir()
    real = write_real(tmp_path / "private" / "real.jsonl", canary_rows())
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    out = tmp_path / "out"
    provider = FakeProvider()
    result = run_framework(
        spec,
        options(out, framework="Feedback", rater="PE", real_data=real, epsilon=4.0, iterations=2, quiet=False),
        provider=provider,
        embedder=HashEmbedder(),
    )
    assert result.dataset_records > 0 and provider.requests
    assert json.loads((out / "manifest.json").read_text())["privacy"]["ledger"]
    captured = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    samples = "\n".join(str(s) for s in result.samples) + "\n".join(result.warnings)
    assert_no_canary(out, provider, [captured.out, captured.err, logs, samples])


def test_the_cli_leaves_no_trace_of_the_canary(tmp_path, caplog, capfd, monkeypatch):
    import fountain.embed.embedder

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(fountain.embed.embedder, "load_embedder", lambda name=None, **kw: HashEmbedder())
    requests: list = []
    original = FakeProvider.complete

    async def recording(self, request):
        requests.append(request)
        return await original(self, request)

    monkeypatch.setattr(FakeProvider, "complete", recording)
    (tmp_path / "private").mkdir()
    real = write_real(tmp_path / "private" / "real.jsonl", canary_rows())
    folder = make_spec(tmp_path, seeds=1, derivations=1)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "run",
                "-t",
                str(folder),
                "-o",
                str(out),
                "--provider",
                "fake",
                "--framework",
                "Feedback",
                "--rater",
                "PE",
                "--real-data",
                str(real),
                "--epsilon",
                "4",
                "--iterations",
                "1",
                "--seed",
                "3",
            ]
        )
    assert info.value.code == 0
    captured = capfd.readouterr()
    assert "dataset.jsonl" in captured.out
    provider = FakeProvider()
    provider.requests = requests
    assert requests
    logs = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert_no_canary(out, provider, [captured.out, captured.err, logs])


def test_a_filter_run_with_rf_leaves_no_trace_of_the_canary(tmp_path, capfd):
    (tmp_path / "private").mkdir()
    real = write_real(tmp_path / "private" / "real.jsonl", canary_rows())
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=1))
    out = tmp_path / "out"
    provider = FakeProvider()
    run_framework(
        spec, options(out, framework="Filter", rater="RF", real_data=real), provider=provider, embedder=HashEmbedder()
    )
    captured = capfd.readouterr()
    assert_no_canary(out, provider, [captured.out, captured.err])


def test_errors_about_private_data_do_not_quote_it(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    rows = canary_rows()
    duplicated = write_real(tmp_path / "dup.jsonl", rows + [rows[3]])
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[3])[:-5] + "\n", encoding="utf-8")
    for path in (duplicated, broken):
        with pytest.raises(RealDataError) as info:
            plan_framework(
                spec, options(tmp_path / "out", framework="Feedback", rater="PE", real_data=path, epsilon=2.0)
            )
        assert CANARY not in str(info.value) and CANARY not in repr(info.value.__dict__)
