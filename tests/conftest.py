"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

# --- mock model API server (fountain.testing.mock_server) -------------------------------------------


@pytest.fixture(scope="session")
def _mock_server_session():
    from fountain.testing.mock_server import start_in_thread

    handle = start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def mock_server(_mock_server_session):
    """A loopback server speaking the OpenAI, Anthropic and Gemini APIs, reset for each test.

    ``.url`` (Anthropic/Gemini base URL), ``.openai_base_url``, ``.requests`` (recorded, without
    auth headers), ``.configure(latency_ms=, faults=[...], api_key=, models=, ...)``,
    ``.duplicates()``.
    """
    _mock_server_session.reset()
    yield _mock_server_session
    _mock_server_session.reset()
