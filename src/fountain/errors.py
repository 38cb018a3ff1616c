"""The error tree every user-facing failure goes through.

Each error carries a message, an optional location (``file:line:col`` or a key path) and an
optional hint. The CLI prints them without a traceback and exits with code 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class FountainError(Exception):
    """Base class of every error a user can cause or fix."""

    exit_code = 1

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        parts = [f"{self.location}: {self.message}" if self.location else self.message]
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


@dataclass(frozen=True)
class Problem:
    """One problem found while checking an input; many may be reported together."""

    message: str
    location: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class SpecError(FountainError):
    """setup.yaml (or a file it points to) is missing, unreadable or invalid.

    ``problems`` holds every problem found, so a user fixes them all in one pass.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        hint: str | None = None,
        problems: list[Problem] | None = None,
    ):
        super().__init__(message, location=location, hint=hint)
        self.problems = problems or [Problem(message, location, hint)]

    def __str__(self) -> str:
        if len(self.problems) <= 1:
            return super().__str__()
        lines = [f"{len(self.problems)} problems in the spec:"]
        lines += [f"- {p}".replace("\n", "\n  ") for p in self.problems]
        return "\n".join(lines)


class DiagramError(FountainError):
    """A mermaid erDiagram could not be parsed. ``line`` and ``column`` are 1-based."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
        path: str | None = None,
        hint: str | None = None,
    ):
        location = path or "diagram"
        if line is not None:
            location += f":{line}" + (f":{column}" if column is not None else "")
        if source_line is not None and column is not None:
            message = f"{message}\n    {source_line}\n    {' ' * max(column - 1, 0)}^"
        super().__init__(message, location=location, hint=hint)
        self.line = line
        self.column = column


class TemplateError(FountainError):
    """A prompt template is malformed or uses a variable that does not exist."""


class ProviderError(FountainError):
    """A model provider failed. ``retryable`` tells the engine whether to try again."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        location: str | None = None,
    ):
        super().__init__(message, location=location, hint=hint)
        self.status = status
        self.retry_after = retry_after


class MissingDependencyError(ProviderError):
    """An optional package (pip extra) is not installed."""


class MissingAPIKeyError(ProviderError):
    """The environment variable holding the API key is not set."""


class AuthenticationError(ProviderError):
    """The provider refused the key (401/403)."""


class ModelNotFoundError(ProviderError):
    """The provider does not know the model (404)."""


class QuotaExceededError(ProviderError):
    """The account's quota or credit is exhausted: retrying will not help."""


class RateLimitError(ProviderError):
    """429: slow down and retry, after ``retry_after`` seconds when the provider says so."""

    retryable = True


class TransientProviderError(ProviderError):
    """5xx, timeouts, dropped connections: retry with backoff."""

    retryable = True


class BadRequestError(ProviderError):
    """The provider rejected the request itself (400) for a reason retrying cannot fix."""


class PrivacyBudgetError(FountainError):
    """A run would spend more privacy budget (epsilon) than allowed."""


class RealDataError(FountainError):
    """The real (private) data file is missing, malformed or unusable (e.g. duplicates)."""


class OutputError(FountainError):
    """The output folder cannot be written, or cannot be resumed safely."""


class BudgetExceededError(FountainError):
    """The run stopped before exceeding the cost budget (``--budget``)."""


class ProviderRejectsError(FountainError):
    """A run finished, but some tasks ended as ``provider_error`` rejects (the requests failed
    for good). Exit code 3: the dataset is written but incomplete; rerunning retries those tasks."""

    exit_code = 3


class ErrorRateError(FountainError):
    """Too many requests failed over a recent window (``--max-error-rate``): the run stopped."""
