"""Settings of an edge voting service: the data, the budget, where it listens, its limits and its
bearer token (from the environment, never from a file or a command line)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from fountain.errors import FountainError

TOKEN_ENV = "FOUNTAIN_EDGE_TOKEN"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_CANDIDATES = 4096
MAX_K = 32
MAX_CONVERSATION_CHARS = 200_000


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_from_env(name: str = TOKEN_ENV) -> str | None:
    """The bearer token in ``$FOUNTAIN_EDGE_TOKEN`` (None when unset or blank)."""
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class EdgeConfig:
    """What ``fountain edge serve`` was told. ``token`` is None only on a loopback address."""

    real_data: Path
    epsilon: float
    iterations: int
    state_dir: Path
    delta: float | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    embedder: str | None = None
    category: str | None = None  # for records without one
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_candidates: int = DEFAULT_MAX_CANDIDATES

    def __post_init__(self) -> None:
        if not (self.epsilon > 0) or self.epsilon == float("inf"):
            raise FountainError(
                f"the edge's epsilon must be positive and finite, got {self.epsilon}",
                location="--epsilon",
                hint="an edge always adds noise: pick a budget such as 4",
            )
        if self.iterations < 1:
            raise FountainError(f"iterations must be at least 1, got {self.iterations}", location="--iterations")
        if self.delta is not None and not 0.0 < self.delta < 1.0:
            raise FountainError(f"delta must lie strictly between 0 and 1, got {self.delta}", location="--delta")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise FountainError(
                "TLS needs both a certificate and its key", location="--tls-cert", hint="give --tls-cert and --tls-key"
            )
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not Path(path).is_file():
                raise FountainError("TLS file not found", location=str(path))
        if not is_loopback(self.host) and self.token is None:
            raise FountainError(
                f"refusing to listen on {self.host} without a token: anyone who reaches it could spend "
                "the privacy budget",
                location="--host",
                hint=f"set {TOKEN_ENV} (e.g. `export {TOKEN_ENV}=$(python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')`) on both machines, and give --tls-cert/--tls-key",
            )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def public(self) -> dict[str, object]:
        """What GET /info may say about the service (no path, no token, no count of records)."""
        return {
            "epsilon_budget": self.epsilon,
            "iterations_planned": self.iterations,
            "max_candidates": self.max_candidates,
            "max_body_bytes": self.max_body_bytes,
            "max_k": MAX_K,
            "tls": self.tls,
        }
