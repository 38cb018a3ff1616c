"""``fountain cancel OUTPUT``: cancel the batch jobs of a run that are not collected yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fountain import aio
from fountain.batch.jobs import LEDGER_FILE, JobRecord, Ledger
from fountain.errors import OutputError


def _api_for(job: JobRecord) -> Any:
    from fountain.batch.base import make_batch_api
    from fountain.providers import create_provider
    from fountain.providers.base import ProviderConfig

    identity = job.identity
    config = ProviderConfig(
        provider=job.provider,
        model=identity.get("model"),
        base_url=identity.get("base_url"),
        api_key_env=job.api_key_env,
    )
    return make_batch_api(create_provider(config))


async def _cancel(ledger: Ledger, forget_unconfirmed: bool) -> list[str]:
    lines = []
    for job in ledger.pending():
        if job.remote_id is None:
            if forget_unconfirmed:
                ledger.append({"event": "abandoned", "job": job.job, "why": "fountain cancel --forget-unconfirmed"})
                lines.append(f"{job.job}: creation never confirmed; forgotten ({len(job.keys):,} requests)")
            else:
                lines.append(f"{job.job}: creation never confirmed; left as is (see --forget-unconfirmed)")
            continue
        api = _api_for(job)
        try:
            await api.cancel(job.remote_id)
            status = await api.poll(job.remote_id)
        finally:
            await api.aclose()
        ledger.append({"event": "state", "job": job.job, "state": status.state, "counts": status.counts})
        lines.append(f"{job.job} ({job.remote_id}): cancel requested, now {status.state}")
    return lines


def cancel_jobs(output_dir: str | Path, *, forget_unconfirmed: bool = False) -> Iterator[str]:
    """Ask the provider to cancel each job of ``output_dir`` not collected yet; one line each.

    A cancelled job's finished answers are still collected by the next ``fountain run --batch``
    (they are paid for); the others are submitted again by that run."""
    from fountain.run.manifest import output_lock

    folder = Path(output_dir)
    if not (folder / LEDGER_FILE).is_file():
        raise OutputError(
            f"no batch jobs here ({LEDGER_FILE} is missing)",
            location=str(folder),
            hint="give the output folder of a `fountain run --batch`",
        )
    with output_lock(folder):
        ledger = Ledger(folder)
        lines = aio.run(_cancel(ledger, forget_unconfirmed))
    if not lines:
        lines = ["no batch job is waiting: nothing to cancel"]
    yield from lines
