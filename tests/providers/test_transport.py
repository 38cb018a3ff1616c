"""Which HTTP client the openai adapter uses, and how transport failures are worded."""

from __future__ import annotations

import pytest

from fountain.errors import MissingDependencyError, ProviderError
from fountain.providers import transport
from fountain.providers.transport import (
    AiohttpTransport,
    BadURL,
    TransportFailure,
    chosen_client,
    make_transport,
)

HAS_PYREQWEST = transport._pyreqwest_available()


def test_auto_uses_pyreqwest_for_plain_http_only(monkeypatch):
    monkeypatch.delenv(transport.ENV_VAR, raising=False)
    expected = "pyreqwest" if HAS_PYREQWEST else "aiohttp"
    assert chosen_client("http://127.0.0.1:8000/v1/chat/completions") == expected
    # TLS stays with Python's ssl trust store unless the user asks otherwise.
    assert chosen_client("https://api.openai.com/v1/chat/completions") == "aiohttp"


def test_auto_falls_back_to_aiohttp_without_pyreqwest(monkeypatch):
    monkeypatch.setattr(transport, "_pyreqwest_available", lambda: False)
    assert chosen_client("http://localhost:8000/v1", "auto") == "aiohttp"
    assert isinstance(
        make_transport("http://localhost:8000/v1", timeout_s=1, max_connections=4, headers={}, choice="auto"),
        AiohttpTransport,
    )


def test_forced_choices(monkeypatch):
    monkeypatch.setenv(transport.ENV_VAR, " AIOHTTP ")
    assert chosen_client("http://localhost:8000/v1") == "aiohttp"
    if HAS_PYREQWEST:
        monkeypatch.setenv(transport.ENV_VAR, "pyreqwest")
        assert chosen_client("https://api.openai.com/v1") == "pyreqwest"


def test_unknown_client_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(transport.ENV_VAR, "curl")
    with pytest.raises(ProviderError, match="FOUNTAIN_HTTP_CLIENT='curl'") as info:
        chosen_client("http://localhost:8000/v1")
    assert "auto, pyreqwest, aiohttp" in info.value.hint


def test_forced_pyreqwest_when_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(transport, "_pyreqwest_available", lambda: False)
    with pytest.raises(MissingDependencyError, match="not installed") as info:
        chosen_client("http://localhost:8000/v1", "pyreqwest")
    assert "pip install pyreqwest" in info.value.hint


@pytest.mark.parametrize("client", ["aiohttp", "pyreqwest"])
async def test_refused_connection_and_bad_url(client):
    if client == "pyreqwest" and not HAS_PYREQWEST:
        pytest.skip("pyreqwest needs Python 3.11+")
    from fountain.testing.mock_server import free_port

    headers = {"Authorization": "Bearer sk-never-in-messages"}
    sender = make_transport("http://x", timeout_s=2, max_connections=4, headers=headers, choice=client)
    with pytest.raises(TransportFailure) as info:
        await sender.post(f"http://127.0.0.1:{free_port()}/v1/chat/completions", b"{}")
    assert "sk-never" not in str(info.value)
    assert str(info.value).split(":")[0]  # names what failed
    with pytest.raises(BadURL):
        await sender.post("ftp://example.invalid/v1", b"{}")
    await sender.aclose()


@pytest.mark.parametrize("client", ["aiohttp", "pyreqwest"])
async def test_post_returns_status_headers_and_body(mock_server, client):
    if client == "pyreqwest" and not HAS_PYREQWEST:
        pytest.skip("pyreqwest needs Python 3.11+")
    mock_server.configure(faults=["429"], retry_after="7")
    sender = make_transport(
        "http://x",
        timeout_s=5,
        max_connections=4,
        headers={"Content-Type": "application/json", "User-Agent": "fountain-test"},
        choice=client,
    )
    status, headers, body = await sender.post(
        mock_server.openai_base_url + "/chat/completions", b'{"model": "m", "messages": []}'
    )
    assert status == 429
    assert headers.get("Retry-After") == headers.get("retry-after") == "7"
    assert b"Rate limit" in body
    (recorded,) = mock_server.requests
    assert recorded.headers.get("User-Agent") == "fountain-test"
    await sender.aclose()
