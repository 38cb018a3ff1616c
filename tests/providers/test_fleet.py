"""A fleet of OpenAI-compatible servers: several loopback mock servers, one of them failing."""

from __future__ import annotations

import asyncio
import json

import pytest

from fountain.errors import TransientProviderError
from fountain.providers import create_provider, resolve_provider_config
from fountain.providers.base import Message, ProviderConfig, Request
from fountain.providers.dispatch import Dispatcher
from fountain.providers.fleet import FleetProvider
from fountain.testing.mock_server import free_port, start_in_thread
from spec_helpers import VALID, make_spec, run_cli

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def _request(index: int) -> Request:
    return Request(messages=(Message("user", f"Write {index}."),), schema=SCHEMA, seed=1, sample_index=index)


@pytest.fixture
def servers():
    handles = [start_in_thread(latency_ms=5) for _ in range(3)]
    yield handles
    for handle in handles:
        handle.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fleet(urls, clock=None, **extra) -> FleetProvider:
    config = ProviderConfig(provider="openai", model="m", base_urls=tuple(urls), timeout_s=5.0, extra=extra)
    return FleetProvider(config, clock=clock or Clock())


async def test_requests_are_spread_over_the_servers(servers):
    fleet = _fleet([s.openai_base_url for s in servers], server_concurrency=2)
    dispatcher = Dispatcher(fleet, concurrency=6)
    await asyncio.gather(*(dispatcher.complete(_request(i)) for i in range(30)))
    await fleet.aclose()
    counts = [len(s.requests) for s in servers]
    assert sum(counts) == 30 and min(counts) >= 5, counts


async def test_a_failing_server_is_taken_out_and_no_request_fails(servers):
    servers[1].configure(fault_rates={"500": 1.0})
    clock = Clock()
    fleet = _fleet([s.openai_base_url for s in servers], clock, failures_to_open=2)
    dispatcher = Dispatcher(fleet, concurrency=3)
    answers = await asyncio.gather(*(dispatcher.complete(_request(i)) for i in range(40)))
    assert all(a.data is not None for a in answers)
    assert dispatcher.stats.failed == 0 and dispatcher.stats.retries == 0
    # the failing server saw its two failures, then no more requests while out
    assert len(servers[1].requests) == 2
    assert fleet.servers()[1]["out"] and fleet.servers()[1]["times_out"] == 1

    # after the cooldown one request probes it; still failing, it goes out for twice as long
    clock.now += 6
    await dispatcher.complete(_request(100))
    assert len(servers[1].requests) == 3 and fleet.members[1].cooldown_s == 10.0
    # repaired: after the next cooldown the probe succeeds and it is back in the fleet
    servers[1].configure(fault_rates={})
    clock.now += 11
    await asyncio.gather(*(dispatcher.complete(_request(200 + i)) for i in range(9)))
    assert not fleet.servers()[1]["out"] and fleet.servers()[1]["answered"] >= 1
    await fleet.aclose()


async def test_a_dead_server_costs_no_failed_request(servers):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    fleet = _fleet([dead, servers[0].openai_base_url])
    dispatcher = Dispatcher(fleet, concurrency=2)
    answers = await asyncio.gather(*(dispatcher.complete(_request(i)) for i in range(10)))
    await fleet.aclose()
    assert len(answers) == 10 and dispatcher.stats.failed == 0
    assert fleet.servers()[0]["out"] and fleet.servers()[0]["answered"] == 0


async def test_a_whole_fleet_down_fails_the_request_for_the_dispatcher_to_retry():
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    fleet = _fleet(urls, failures_to_open=1)
    with pytest.raises(TransientProviderError, match="connection to"):
        await fleet.complete(_request(0))
    with pytest.raises(TransientProviderError, match="every server of the fleet is out"):
        await fleet.complete(_request(1))
    await fleet.aclose()


def test_several_base_urls_make_a_fleet_with_a_stable_identity():
    config = resolve_provider_config(None, provider="openai", base_urls=("http://a:1/v1", "http://b:2/v1"), env={})
    provider = create_provider(config)
    assert isinstance(provider, FleetProvider) and len(provider.members) == 2
    # answers do not depend on the server: the cache and resume survive changes to the fleet
    assert provider.identity() == {"provider": "openai", "model": "gpt-4o-mini", "base_url": "fleet"}


def test_spec_base_urls_make_a_fleet():
    from fountain.spec.model import ModelSettings

    spec_model = ModelSettings(provider="openai", base_urls=("http://a:1/v1", "http://b:2/v1"))
    config = resolve_provider_config(spec_model, env={})
    assert config.base_urls == ("http://a:1/v1", "http://b:2/v1")
    # one --base-url on the command line wins over the spec's fleet
    config = resolve_provider_config(spec_model, base_url="http://c:3/v1", env={})
    assert config.base_urls == () and config.base_url == "http://c:3/v1"


def test_cli_run_over_a_fleet_with_one_failing_server(servers, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    servers[2].configure(fault_rates={"500": 1.0})
    # no embedding dedup: this test is about the requests, not the embedder (slow to load)
    spec = make_spec(tmp_path, VALID + "raters:\n  dedup:\n    embedding_threshold: null\n")
    output = tmp_path / "out"
    args = ["run", "-t", str(spec), "-o", str(output), "--provider", "openai", "--model", "m", "-q"]
    servers_urls = [server.openai_base_url for server in servers]
    for url in servers_urls:
        args += ["--base-url", url]
    code, text = run_cli(args + ["--seeds-per-direction", "4", "--derivations-per-direction", "1"], capsys)
    assert code == 0, text
    records = (output / "dataset.jsonl").read_text().splitlines()
    assert records and all(json.loads(line)["messages"] for line in records)
    assert len(servers[0].requests) > 0 and len(servers[1].requests) > 0
    assert len(servers[2].requests) <= 3  # out after its third failure
    failing_requests = servers[2].requests
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["provider"]["base_url"] == "fleet"
    by_url = {s["base_url"]: s for s in manifest["servers"]}  # what each server did
    failing = by_url[servers_urls[2]]
    assert failing["answered"] == 0 and failing["failed"] == len(failing_requests) >= 1
    assert by_url[servers_urls[0]]["answered"] > 0
    # `fountain status` shows what each server did, as a table line and in --json
    code, text = run_cli(["status", str(output)], capsys)
    assert code == 0, text
    assert f"server    {servers_urls[2]}: 0 answered, {len(failing_requests)} failed" in text
    code, text = run_cli(["status", str(output), "--json"], capsys)
    assert json.loads(text)["servers"] == manifest["servers"]
