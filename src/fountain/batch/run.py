"""``fountain run --batch`` end to end: the batch phase, then (once every answer is in) the normal
run over the cache with a provider that cannot call the API, then the job summary in the manifest."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fountain import aio
from fountain.batch.jobs import Ledger
from fountain.batch.phase import BatchReport, run_batch_phase
from fountain.batch.recorder import CacheOnlyProvider
from fountain.run.options import RunOptions, RunResult, effective_spec
from fountain.spec.model import Spec


async def run_batch_async(
    spec: Spec,
    options: RunOptions,
    *,
    wait: bool = False,
    poll_s: float = 30.0,
    provider: Any = None,
    api: Any = None,
    limits: Any = None,
    say: Callable[[str], None] | None = None,
) -> tuple[BatchReport, RunResult | None]:
    """The batch phase, and the run that writes the dataset once it is done (else ``None``)."""
    from fountain.frameworks.runner import run_framework_async
    from fountain.providers.dispatch import cache_identity
    from fountain.run.engine import make_provider

    own = provider is None
    if provider is None:
        provider = make_provider(effective_spec(spec, options), options)
    try:
        report = await run_batch_phase(
            spec, options, provider, wait=wait, poll_s=poll_s, api=api, limits=limits, say=say
        )
        if not report.done:
            return report, None
        replay = CacheOnlyProvider(provider, report.failures, cache_identity(provider))
        result = await run_framework_async(spec, options, provider=replay)
    finally:
        if own:
            await provider.aclose()
    write_manifest_batch(report.output_dir)
    return report, result


def run_batch(spec: Spec, options: RunOptions, **kwargs: Any) -> tuple[BatchReport, RunResult | None]:
    """Synchronous :func:`run_batch_async`."""
    return aio.run(run_batch_async(spec, options, **kwargs))


def write_manifest_batch(output_dir: Path) -> None:
    """Add the ledger's job states and counts to ``manifest.json`` (key ``batch``)."""
    path = Path(output_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    manifest["batch"] = Ledger(output_dir).summary()
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
