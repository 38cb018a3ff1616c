"""The spec: setup.yaml (+ the diagram) read, validated and turned into typed objects.

Public entry point: :func:`load_spec`. Janus (original Auto Data Fountain) specs load unmodified.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fountain.diagram import Diagram

CONVERSATION = "conversation"
INSTRUCT = "instruct"


@dataclass(frozen=True)
class GenerationSettings:
    type: str = CONVERSATION  # resolved: "conversation" | "instruct"
    seeds_per_direction: int = 1
    derivations_per_direction: int = 1
    min_turns: int = 1
    max_turns: int = 8
    max_prefix_turns: int | None = None  # derive from prefixes 1..min(n, this)
    target: int | None = None  # stop once this many conversations are accepted
    max_retries: int = 2  # re-asks after a validation failure before a reject
    mode: str = "auto"  # "json" (whole conversation as JSON) | "turns" (turn by turn) | "auto"


@dataclass(frozen=True)
class ModelSettings:
    provider: str | None = None  # None: local (or whatever the CLI/env says)
    name: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    timeout_s: float | None = None
    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None


@dataclass(frozen=True)
class OutputSettings:
    folder: str = "output"
    format: str = "messages"  # messages | sharegpt | janus
    system_message: str | None = None


@dataclass(frozen=True)
class DedupSettings:
    enabled: bool = True
    exact: bool = True
    minhash_threshold: float | None = 0.9  # None disables
    embedding_threshold: float | None = 0.9  # None disables (also skipped without the embed extra)


@dataclass(frozen=True)
class RaterSettings:
    rater: str | None = None  # None | "PE" | "RF"
    real_data: str | None = None  # path, relative to the spec folder
    dedup: DedupSettings = field(default_factory=DedupSettings)
    k: int = 1  # PE: neighbours each private sample votes for; RF: k of the k-NN vote
    threshold: float | None = None  # PE: histogram clip H (None: derived from sigma)
    selection: str = "rank"  # PE: "rank" | "sample"
    rf_percentile: float = 5.0  # RF: calibration percentile of real margins
    embedder: str | None = None


@dataclass(frozen=True)
class PrivacySettings:
    epsilon: float | None = None
    delta: float | None = None  # None: 1/(N ln N)
    iterations: int = 1


@dataclass(frozen=True)
class Spec:
    """A validated spec folder.

    ``template_style`` is "legacy" for the original positional ``%s`` prompts and "jinja" for
    named ``{{ variables }}``.
    """

    folder: Path
    path: Path
    category: str
    user_role: str
    assistant_role: str
    initial_prompt: str
    derivational_prompt: str
    output_format: str
    delimiter: str
    seed_directions: tuple[str, ...]
    derivational_directions: tuple[str, ...]
    diagram_text: str
    diagram: Diagram
    diagram_path: Path | None = None
    template_style: str = "legacy"
    system_prompt: str | None = None
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    personas: tuple[str, ...] = ()
    output: OutputSettings = field(default_factory=OutputSettings)
    raters: RaterSettings = field(default_factory=RaterSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    framework: str = "Gen"
    data: dict[str, Any] = field(default_factory=dict)  # the validated YAML mapping as loaded

    def fingerprint(self) -> str:
        """Canonical hash of everything that changes the data (not comments or key order)."""
        raise NotImplementedError


def load_spec(folder: str | Path, *, type_override: str | None = None) -> Spec:
    """Read and validate ``<folder>/setup.yaml`` and its diagram; raise SpecError/DiagramError."""
    raise NotImplementedError
