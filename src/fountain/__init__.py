"""fountain: conversational fine-tuning data from a declarative spec.

The library API (the CLI is a thin layer over it)::

    import fountain

    spec = fountain.load_spec("samples/marriage_counsel")        # setup.yaml + diagram.mermaid
    result = fountain.generate(spec, fountain.RunOptions(provider="fake", output="out"))
    records = fountain.read_dataset(result.output_dir)             # the exported dataset
    for sample in fountain.read_samples("out"):                    # accepted samples with provenance
        print(sample.provenance.direction, len(sample.turns))

Names are imported on first use, so ``import fountain`` (and ``fountain --help``) stays fast.
(``generate``, not ``run``: ``fountain.run`` is the package of the run's output folder.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_spec": "fountain.spec.load",
    "check_spec": "fountain.spec.load",
    "Spec": "fountain.spec.model",
    "RunOptions": "fountain.run.options",
    "RunResult": "fountain.run.options",
    "generate": "fountain.frameworks.runner:run_framework",
    "generate_async": "fountain.frameworks.runner:run_framework_async",
    "plan_framework": "fountain.frameworks.plan",
    "read_dataset": "fountain.run.dataset",
    "read_samples": "fountain.run.dataset",
    "create_provider": "fountain.providers",
    "Sample": "fountain.types",
    "Turn": "fountain.types",
    "Provenance": "fountain.types",
    "Usage": "fountain.types",
    "FountainError": "fountain.errors",
}

__all__ = [
    "FountainError",
    "Provenance",
    "RunOptions",
    "RunResult",
    "Sample",
    "Spec",
    "Turn",
    "Usage",
    "__version__",
    "check_spec",
    "create_provider",
    "generate",
    "generate_async",
    "load_spec",
    "plan_framework",
    "read_dataset",
    "read_samples",
]

if TYPE_CHECKING:  # pragma: no cover
    from fountain.errors import FountainError
    from fountain.frameworks.plan import plan_framework
    from fountain.frameworks.runner import run_framework as generate
    from fountain.frameworks.runner import run_framework_async as generate_async
    from fountain.providers import create_provider
    from fountain.run.dataset import read_dataset, read_samples
    from fountain.run.options import RunOptions, RunResult
    from fountain.spec.load import check_spec, load_spec
    from fountain.spec.model import Spec
    from fountain.types import Provenance, Sample, Turn, Usage


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'fountain' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
