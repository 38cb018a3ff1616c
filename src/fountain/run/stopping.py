"""How a run that stopped says so: the error that ends :meth:`fountain.run.engine.Engine.run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fountain.errors import FountainError, ProviderError
from fountain.generation.worker import PROVIDER_ERROR

if TYPE_CHECKING:  # pragma: no cover
    from fountain.run.engine import Engine


def nothing_accepted_error(engine: Engine) -> FountainError | None:
    """A run that accepted no conversation because its requests failed is an error, not a
    completed run: it names the last provider error (the run is marked stopped; a rerun tries
    the failed tasks again)."""
    failed = sum(1 for reason, _, _ in engine.rejects.values() if reason == PROVIDER_ERROR)
    if len(engine.samples) or not failed:
        return None
    last = getattr(engine.dispatcher, "last_error", None)
    where = getattr(engine.provider, "base_url", None)
    return ProviderError(
        f"no conversation was accepted: {failed} request(s) to {engine.provider.name}"
        f"{f' at {where}' if where else ''} failed" + (f"; last error: {last.message}" if last is not None else ""),
        hint="check --base-url (or model.base_url), the model name and that the server is up; "
        "rejects.jsonl lists each failure; run the same command again to retry them",
    )


def raise_if_stopped(engine: Engine) -> None:
    """Re-raise a crash; raise the error that stopped the run, saying how to continue."""
    if engine.crash is not None:
        raise engine.crash
    if engine.stop_error is not None:
        error = engine.stop_error
        more = (
            f"everything generated so far is saved in {engine.output_dir}; fix the problem and "
            "run the same command again to continue where it stopped"
        )
        if "run the same command again" not in (error.hint or ""):
            error.hint = f"{error.hint}; {more}" if error.hint else more
        raise error
