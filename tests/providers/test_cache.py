"""The response cache: what goes into a key, persistence, secrets."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from fountain.errors import OutputError
from fountain.providers.base import (
    Completion,
    Message,
    ProviderConfig,
    Request,
    Sampling,
)
from fountain.providers.cache import ResponseCache, request_key
from fountain.types import Usage

IDENTITY = {"provider": "openai", "model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1"}
SCHEMA = {"type": "object", "properties": {"turns": {"type": "array"}}, "required": ["turns"]}


def base_request(**changes) -> Request:
    request = Request(
        messages=(
            Message("system", "You write conversations."),
            Message("user", "Write a conversation about budgets."),
        ),
        schema=SCHEMA,
        sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=512),
        sample_index=3,
        seed=42,
        purpose="seed",
    )
    return dataclasses.replace(request, **changes)


ANSWER_CHANGES = {
    "message text": dict(
        messages=(Message("system", "You write conversations."), Message("user", "Write a conversation about taxes."))
    ),
    "message role": dict(
        messages=(Message("user", "You write conversations."), Message("user", "Write a conversation about budgets."))
    ),
    "message order": dict(
        messages=(Message("user", "Write a conversation about budgets."), Message("system", "You write conversations."))
    ),
    "extra message": dict(
        messages=(
            Message("system", "You write conversations."),
            Message("user", "Write a conversation about budgets."),
            Message("assistant", "{"),
        )
    ),
    "schema": dict(schema={**SCHEMA, "required": []}),
    "no schema": dict(schema=None),
    "temperature": dict(sampling=Sampling(temperature=0.8, top_p=0.9, max_tokens=512)),
    "top_p": dict(sampling=Sampling(temperature=0.7, top_p=1.0, max_tokens=512)),
    "max_tokens": dict(sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=1024)),
    "unset temperature": dict(sampling=Sampling(top_p=0.9, max_tokens=512)),
    "sample_index": dict(sample_index=4),
    "seed": dict(seed=43),
    "no seed": dict(seed=None),
}


@pytest.mark.parametrize("name", sorted(ANSWER_CHANGES))
def test_every_field_that_changes_the_answer_changes_the_key(name):
    assert request_key(IDENTITY, base_request(**ANSWER_CHANGES[name])) != request_key(IDENTITY, base_request())


@pytest.mark.parametrize(
    "field,value", [("provider", "anthropic"), ("model", "gpt-4o"), ("base_url", "http://127.0.0.1:8000/v1")]
)
def test_provider_identity_changes_the_key(field, value):
    assert request_key({**IDENTITY, field: value}, base_request()) != request_key(IDENTITY, base_request())


def test_things_that_do_not_change_the_answer_leave_the_key_alone():
    key = request_key(IDENTITY, base_request())
    assert request_key(IDENTITY, base_request(purpose="derivation")) == key
    # Key order of the identity and of the schema is not part of the answer.
    assert request_key(dict(reversed(list(IDENTITY.items()))), base_request()) == key
    reordered_schema = {"required": ["turns"], "properties": {"turns": {"type": "array"}}, "type": "object"}
    assert request_key(IDENTITY, base_request(schema=reordered_schema)) == key
    # Anything named like a credential is dropped from the identity, whatever its value.
    assert request_key({**IDENTITY, "api_key": "sk-secret-1", "api_key_env": "MY_KEY"}, base_request()) == key
    # Equal requests built separately give equal keys.
    assert request_key(dict(IDENTITY), base_request()) == key


def test_samples_of_one_prompt_stay_distinct():
    keys = {request_key(IDENTITY, base_request(sample_index=i)) for i in range(20)}
    assert len(keys) == 20


def test_the_key_value_in_the_environment_does_not_change_the_key(monkeypatch):
    from fountain.providers.openai import OpenAIProvider

    config = ProviderConfig(provider="openai", model="gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-first-key-000")
    first = OpenAIProvider(config)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-second-key-111")
    second = OpenAIProvider(config)
    assert request_key(first.identity(), base_request()) == request_key(second.identity(), base_request())
    assert "sk-" not in repr(first.identity())


def test_answers_persist_across_instances(tmp_path):
    path = tmp_path / "shared" / "cache.sqlite"
    completion = Completion(
        text='{"turns": []}',
        data={"turns": []},
        finish_reason="stop",
        usage=Usage(120, 45),
        model="gpt-4o-mini-2024-07-18",
    )
    key = request_key(IDENTITY, base_request())
    with ResponseCache(path) as cache:
        assert cache.get(key) is None
        cache.put(key, base_request(), completion, identity={**IDENTITY, "api_key": "sk-secret"})
        assert cache.get(key) == completion
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.misses, stats.writes) == (1, 1, 1, 1)
    with ResponseCache(path) as again:
        assert again.get(key) == completion
        assert again.get(request_key(IDENTITY, base_request(sample_index=9))) is None
        assert len(again) == 1 and key in again


def test_a_committed_answer_is_visible_to_another_connection_at_once(tmp_path):
    """No batching: what put() returned from is on disk for any other process."""
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    key = request_key(IDENTITY, base_request())
    cache.put(key, base_request(), Completion(text="hello"))
    other = sqlite3.connect(path)
    assert other.execute("SELECT text FROM responses WHERE key = ?", (key,)).fetchone() == ("hello",)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    cache.close()


def test_an_answer_another_process_writes_is_found_once_the_recheck_interval_passed(tmp_path, monkeypatch):
    """A new key is known absent without a query until another connection writes (data_version);
    from then on every lookup queries the file: a shared cache still never pays twice."""
    import fountain.providers.cache as cache_module

    monkeypatch.setattr(cache_module, "KNOWN_KEYS_RECHECK_S", 0.0)
    path = tmp_path / "cache.sqlite"
    key, other_key = request_key(IDENTITY, base_request()), request_key(IDENTITY, base_request(sample_index=8))
    with ResponseCache(path) as reader, ResponseCache(path) as writer:
        assert reader.get(key) is None
        writer.put(key, base_request(), Completion(text="from the other process"))
        found = reader.get(key)
        assert found is not None and found.text == "from the other process"
        assert reader.get(other_key) is None
        reader.put(other_key, base_request(sample_index=8), Completion(text="mine"))
        assert reader.get(other_key) is not None and writer.get(other_key) is not None


def test_stored_request_holds_no_secret(tmp_path):
    path = tmp_path / "cache.sqlite"
    with ResponseCache(path) as cache:
        cache.put(
            "k",
            base_request(),
            Completion(text="x"),
            identity={**IDENTITY, "api_key": "sk-very-secret", "authorization": "Bearer sk-very-secret"},
        )
    raw = path.read_bytes() + (
        path.with_name("cache.sqlite-wal").read_bytes() if path.with_name("cache.sqlite-wal").exists() else b""
    )
    assert b"sk-very-secret" not in raw
    assert b"Write a conversation about budgets." in raw


def test_a_file_that_is_not_a_cache_is_a_clear_error(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(OutputError) as info:
        ResponseCache(path)
    assert info.value.location == str(path)
    assert "--cache" in info.value.hint


async def test_aput_commits_a_tick_of_answers_together_before_returning(tmp_path):
    import asyncio

    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    commits = []
    original = cache._commit
    cache._commit = lambda rows: (commits.append(len(rows)), original(rows))[1]
    requests = [base_request(sample_index=i) for i in range(10)]
    keys = [request_key(IDENTITY, r) for r in requests]
    await asyncio.gather(
        *(cache.aput(k, r, Completion(text=f"answer {i}")) for i, (k, r) in enumerate(zip(keys, requests)))
    )
    assert commits == [10]  # one transaction for the ten answers of one tick
    other = sqlite3.connect(path)  # ... and on disk once aput returned
    assert other.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 10
    assert other.execute("SELECT COUNT(*) FROM schemas").fetchone()[0] == 1  # stored once
    other.close()
    assert cache.request_of(keys[3])["schema"] == SCHEMA
    assert cache.request_of(keys[3])["sample_index"] == 3
    cache.close()


async def test_a_pending_answer_is_visible_and_survives_a_cancelled_writer(tmp_path):
    import asyncio

    cache = ResponseCache(tmp_path / "cache.sqlite")
    key = request_key(IDENTITY, base_request())
    writer = asyncio.ensure_future(cache.aput(key, base_request(), Completion(text="kept")))
    other = asyncio.ensure_future(cache.aput("other", base_request(sample_index=1), Completion(text="x")))
    await asyncio.sleep(0)  # both rows are pending; the commit is scheduled
    assert cache.get(key).text == "kept"
    writer.cancel()
    await other  # the shared commit was not cancelled with the writer
    cache.close()
    with ResponseCache(tmp_path / "cache.sqlite") as again:
        assert again.get(key).text == "kept" and again.get("other").text == "x"


def test_fast_key_equals_the_reference_definition():
    import hashlib

    from fountain.providers.cache import _canonical, canonical_payload

    schema = {"b": [1, {"z": "ü", "a": None}], "a": True}
    for request in (
        base_request(),
        base_request(schema=None, seed=None, sample_index=0),
        base_request(schema=schema, sampling=Sampling()),
        base_request(messages=(Message("user", 'quote " and \\ and ☃\n'),)),
    ):
        for identity in (IDENTITY, {"provider": "local", "model": None, "sha256": "ab"}):
            reference = hashlib.sha256(_canonical(canonical_payload(identity, request)).encode()).hexdigest()
            assert request_key(identity, request) == reference
