"""Plumbing shared by the remote adapters: Retry-After parsing, seeds, sampling, keys, errors.

Kept free of heavy imports (the HTTP clients live in :mod:`fountain.providers.transport`).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from fountain.errors import MissingAPIKeyError, TransientProviderError
from fountain.providers.base import Request, Sampling
from fountain.providers.transport import describe

_SEED_MODULUS = 2**31 - 1  # seeds stay within a signed 32-bit int, which every API accepts


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Returns ``None`` for a missing or unreadable value, never a negative number.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    import email.utils  # an HTTP date is rare: not imported at start-up

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` (or OpenAI's ``retry-after-ms``) from response headers, in seconds."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            seconds = float(millis) / 1000.0
        except ValueError:
            pass
        else:
            if math.isfinite(seconds):
                return max(seconds, 0.0)
    return parse_retry_after(headers.get("retry-after"))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(value: Any) -> float | None:
    """A protobuf duration such as ``"37s"`` or ``"1.5s"`` (Gemini's RetryInfo) in seconds."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def combined_seed(request: Request) -> int | None:
    """One integer from the run seed and the sample index, so N samples of a prompt differ
    and a rerun with the same seed asks for the same samples. ``None`` without a run seed."""
    if request.seed is None:
        return None
    return (int(request.seed) * 1_000_003 + int(request.sample_index)) % _SEED_MODULUS


def merged_sampling(defaults: Sampling, request: Sampling) -> dict[str, Any]:
    """The configured sampling parameters, overridden by the request's own (non-None) ones."""
    merged = defaults.to_dict()
    merged.update(request.to_dict())
    return merged


def read_key(
    env_names: tuple[str, ...], *, env: Mapping[str, str] | None = None, required: bool = True, provider: str
) -> str | None:
    """The API key from the first set variable of ``env_names``; only names reach messages."""
    source = os.environ if env is None else env
    for name in env_names:
        value = source.get(name)
        if value and value.strip():
            return value.strip()
    if not required:
        return None
    names = " or ".join(env_names)
    raise MissingAPIKeyError(
        f"the {provider} provider needs an API key in the environment variable {names}",
        hint=f"export {env_names[0]}=... (keys are read from the environment only, never from "
        f"the command line or setup.yaml)",
    )


def transient(
    provider: str, what: str, error: BaseException | None = None, *, status: int | None = None
) -> TransientProviderError:
    detail = f" ({describe(error)})" if error is not None else ""
    return TransientProviderError(
        f"{provider}: {what}{detail}", status=status, hint="temporary; the engine retries it with backoff"
    )
