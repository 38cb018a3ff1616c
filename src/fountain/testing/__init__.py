"""Offline doubles for testing specs and pipelines: shipped so users can test their own work.

- :class:`FakeProvider` (``--provider fake``): deterministic conversations, or replayed outputs.
- :class:`ScriptedProvider`: answers or raises from a script (the request path without a server).
- :mod:`fountain.testing.mock_server`: a loopback server speaking the OpenAI, Anthropic and Gemini
  HTTP APIs (``start_in_thread()``), for adapters, SDKs and benchmarks.
"""

from fountain.providers.fake import FakeProvider
from fountain.testing.scripted import ScriptedProvider

__all__ = ["FakeProvider", "ScriptedProvider"]
