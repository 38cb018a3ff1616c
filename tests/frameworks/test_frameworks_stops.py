"""QA findings on frameworks: a stop during dedup is not "completed", Ctrl-C is honoured between
embedding batches, each batch is persisted, the embedder loads lazily, an empty dataset warns."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from test_frameworks import A_EXACT, A_NEAR, A, B

import fountain.frameworks.embeddings as embeddings
from fountain.frameworks import run_framework, run_framework_async
from fountain.providers.fake import FakeProvider, ScriptedProvider
from fountain.spec.load import load_spec
from framework_helpers import HashEmbedder, make_spec, options, records


class StopAfter(HashEmbedder):
    """Embeds ``good`` calls, then calls ``stop`` (raise, or cancel a task) on the next one."""

    def __init__(self, good: int, stop) -> None:
        super().__init__()
        self.good = good
        self.stop = stop

    def encode(self, texts, batch_size: int = 64):
        if self.calls >= self.good:
            self.stop()
        return super().encode(texts, batch_size)


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def _interrupt():
    raise KeyboardInterrupt  # what SIGTERM becomes in `fountain run`


def test_a_stop_during_dedup_leaves_the_run_stopped_and_a_rerun_finishes_it(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=2, derivations=0))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_framework(
            spec,
            options(out, concurrency=1),
            provider=ScriptedProvider([A, A_EXACT, A_NEAR, B]),
            embedder=StopAfter(0, _interrupt),
        )
    manifest = _manifest(out)
    assert manifest["status"] == "stopped" and manifest["stop_reason"] == "interrupted"
    assert manifest["runs"][-1]["status"] == "stopped"
    # The raw (not deduplicated) conversations never became the dataset.
    assert not (out / "dataset.jsonl").exists()
    assert len(records(out / "seeds.jsonl")) == 4

    again = ScriptedProvider([A, A_EXACT, A_NEAR, B])
    result = run_framework(spec, options(out, concurrency=1), provider=again, embedder=HashEmbedder())
    assert again.requests == []
    manifest = _manifest(out)
    assert manifest["status"] == "completed" and manifest["runs"][-1]["status"] == "completed"
    assert result.dataset_records == 2 == len(records(out / "dataset.jsonl"))
    assert manifest["counts"]["dataset_records"] == 2


def test_a_stop_during_dedup_keeps_the_previous_dataset(tmp_path):
    spec = load_spec(make_spec(tmp_path, seeds=2, derivations=0))
    out = tmp_path / "out"
    run_framework(
        spec, options(out, concurrency=1), provider=ScriptedProvider([A, A_EXACT, A_NEAR, B]), embedder=HashEmbedder()
    )
    before = (out / "dataset.jsonl").read_bytes()
    (out / "embeddings.sqlite").unlink()  # so the rerun has to embed again
    with pytest.raises(KeyboardInterrupt):
        run_framework(
            spec, options(out, concurrency=1), provider=ScriptedProvider([A]), embedder=StopAfter(0, _interrupt)
        )
    assert (out / "dataset.jsonl").read_bytes() == before
    assert _manifest(out)["status"] == "stopped"


def test_ctrl_c_is_honoured_between_embedding_batches_and_each_batch_is_persisted(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "EMBED_BATCH", 2)
    spec = load_spec(make_spec(tmp_path, seeds=4, derivations=0))  # 8 distinct fake conversations
    out = tmp_path / "out"

    async def main():
        task = None
        # asyncio.run answers Ctrl-C by cancelling the main task: do just that in the 2nd batch.
        embedder = StopAfter(1, lambda: task.cancel())
        task = asyncio.ensure_future(
            run_framework_async(spec, options(out), provider=FakeProvider(), embedder=embedder)
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        return embedder

    embedder = asyncio.run(main())
    assert embedder.calls == 2  # no batch embedded after the one during which Ctrl-C came
    manifest = _manifest(out)
    assert manifest["status"] == "stopped" and manifest["stop_reason"] == "interrupted"
    assert not (out / "dataset.jsonl").exists()
    with sqlite3.connect(out / "embeddings.sqlite") as db:
        stored = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    assert stored >= 2  # the first batch was saved before the interrupt


def test_the_embedder_loads_only_when_the_embedding_stage_has_two_candidates(tmp_path, monkeypatch):
    import fountain.embed.embedder as embed

    loads = []

    def fake_load(name=None, **kw):
        loads.append(name)
        return HashEmbedder()

    monkeypatch.setattr(embed, "load_embedder", fake_load)
    monkeypatch.setattr(embeddings, "_embed_extra_missing", lambda name: None)
    spec = load_spec(make_spec(tmp_path, seeds=2, derivations=0))
    # Exact and MinHash leave one conversation: no embedder is loaded at all.
    out = tmp_path / "same"
    result = run_framework(spec, options(out, concurrency=1), provider=ScriptedProvider([A, A_EXACT, A_NEAR, A]))
    assert loads == [] and result.dataset_records == 1
    assert _manifest(out)["framework"]["dedup"]["stages_run"] == ["exact", "minhash", "embedding"]
    # Two distinct conversations left: it is loaded, once, after generation.
    out = tmp_path / "two"
    result = run_framework(spec, options(out, concurrency=1), provider=ScriptedProvider([A, A_EXACT, A_NEAR, B]))
    assert loads == [None] and result.dataset_records == 2


def test_an_empty_dataset_is_a_clear_warning(tmp_path, capsys):
    spec = load_spec(make_spec(tmp_path, seeds=1, derivations=0))
    out = tmp_path / "out"
    result = run_framework(
        spec, options(out, max_retries=0), provider=ScriptedProvider(["not json at all"]), embedder=HashEmbedder()
    )
    assert result.dataset_records == 0
    warning = next(w for w in result.warnings if "dataset is empty" in w)
    assert "rejects.jsonl" in warning and "top reasons" in warning
    reason = records(out / "rejects.jsonl")[0]["reason"]
    assert reason in warning
    assert "dataset is empty" in capsys.readouterr().err
    assert _manifest(out)["status"] == "completed"
