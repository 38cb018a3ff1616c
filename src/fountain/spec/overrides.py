"""A spec with a run's framework settings applied (as the manifest records them)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.model import Spec


def apply_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """``spec`` with a run's framework settings (dotted keys: ``framework``, ``raters.rater``,
    ``privacy.epsilon``...), as recorded in the manifest under ``framework.overrides``."""
    changes: dict[str, Any] = {}
    for block in ("raters", "privacy"):
        values = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(block + ".")}
        if values:
            changes[block] = replace(getattr(spec, block), **values)
    if "framework" in overrides:
        changes["framework"] = overrides["framework"]
    return replace(spec, **changes) if changes else spec
