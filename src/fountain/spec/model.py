"""The spec as typed, frozen values: settings blocks, the :class:`Spec`, its fingerprint.

Imports nothing of fountain at run time (type names only): every stage may read a spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fountain.diagram import Diagram
    from fountain.errors import Problem
    from fountain.spec.sourcefile import Locator

CONVERSATION = "conversation"
INSTRUCT = "instruct"
TYPES = (CONVERSATION, INSTRUCT)

SETUP_FILE = "setup.yaml"
DIAGRAM_FILE = "diagram.mermaid"
DEFAULT_DELIMITER = "------------------------------"
#: The original project's output formats, used when a spec gives none.
DEFAULT_OUTPUT_FORMATS = {
    CONVERSATION: "The generated conversations are recorded in a valid JSON as\n"
    '{"conversations":[{"user": text, "assistant": text},...]}.\n',
    INSTRUCT: "The generated conversations are recorded in a valid JSON as\n"
    '{"conversation":{"user": text, "assistant": text}}.\n',
}
FINGERPRINT_VERSION = 1


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
    base_urls: tuple[str, ...] | None = None  # a fleet of OpenAI-compatible servers
    structured_output: str | None = None  # auto | json_schema | json_object | none


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
    # --- added by the spec layer (all defaulted) ---
    type_source: str = "default"  # where the type came from: "key" | "override" | "slots" | "default"
    personas_path: Path | None = None
    locations: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # key path -> file:line:col
    warnings: tuple[Problem, ...] = ()
    # Where each key of setup.yaml is (for the cross-checks of a built spec); None when built in code.
    locator: Locator | None = field(default=None, repr=False, compare=False)

    @property
    def type(self) -> str:
        """The resolved conversation type: "conversation" or "instruct"."""
        return self.generation.type

    @property
    def prefix_limit(self) -> int:
        """Longest prefix a derivation starts from (1 for instruct)."""
        gen = self.generation
        if gen.type == INSTRUCT:
            return 1
        return min(gen.max_turns, gen.max_prefix_turns) if gen.max_prefix_turns else gen.max_turns

    def planned_seed_calls(self) -> int:
        """Seed requests of a run (before retries): seed directions × seeds per direction × personas."""
        from fountain.spec.directions import distinct_directions  # aliases are one direction

        seeds = len(distinct_directions(self.seed_directions))
        return seeds * self.generation.seeds_per_direction * max(1, len(self.personas))

    def max_derivation_calls(self, accepted_seeds: int | None = None) -> int:
        """Upper bound of derivation requests (before retries).

        accepted seeds × prefixes 1..n × derivational directions × derivations per direction, with
        n = min(max_turns, max_prefix_turns) (1 for instruct); every seed accepted when not given.
        """
        seeds = self.planned_seed_calls() if accepted_seeds is None else accepted_seeds
        from fountain.spec.directions import distinct_directions

        directions = len(distinct_directions(self.derivational_directions))
        return seeds * self.prefix_limit * directions * self.generation.derivations_per_direction

    def fingerprint_fields(self) -> dict[str, Any]:
        """The fields the fingerprint hashes: short values as they are, long ones as a sha256.

        Keys are dotted (``generation.max_turns``) so a resume can name what changed. Only what
        changes the data is included: not the output folder/format, concurrency, rate limits,
        timeouts or the name of the API key variable.
        """
        diagram_dict = _jsonable(self.diagram.to_dict())
        values: dict[str, Any] = {
            "fingerprint_version": FINGERPRINT_VERSION,
            "template_style": self.template_style,
            "category": self.category,
            "user_role": self.user_role,
            "assistant_role": self.assistant_role,
            "initial_prompt": self.initial_prompt,
            "derivational_prompt": self.derivational_prompt,
            "output_format": self.output_format,
            "delimiter": self.delimiter,
            "system_prompt": self.system_prompt,
            "seed_directions": list(self.seed_directions),
            "derivational_directions": list(self.derivational_directions),
            "personas": list(self.personas),
            "diagram": diagram_dict,
            "diagram.notes": list(self.diagram.notes),
            "framework": self.framework,
            "output.system_message": self.output.system_message,
        }
        if isinstance(self.data, dict) and self.data.get("quality") is not None:
            values["quality"] = self.data["quality"]  # the gates' thresholds (absent: defaults)
        for name, value in asdict(self.generation).items():
            values[f"generation.{name}"] = value
        for name, value in asdict(self.model).items():
            if name not in _NOT_IN_FINGERPRINT:
                values[f"model.{name}"] = value
        raters = asdict(self.raters)
        for name, value in raters.pop("dedup").items():
            values[f"raters.dedup.{name}"] = value
        for name, value in raters.items():
            values[f"raters.{name}"] = value
        for name, value in asdict(self.privacy).items():
            values[f"privacy.{name}"] = value
        return {key: _short(value) for key, value in sorted(values.items())}

    def fingerprint(self) -> str:
        """Canonical hash of everything that changes the data (not comments or key order)."""
        return hashlib.sha256(_canonical(self.fingerprint_fields()).encode("utf-8")).hexdigest()


# Model settings that change how fast or where from, not what is generated.
_NOT_IN_FINGERPRINT = {"api_key_env", "timeout_s", "concurrency", "rpm", "tpm", "base_urls", "structured_output"}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    return json.loads(_canonical(value))


def _short(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str) and len(value) <= 64:
        return value
    return "sha256:" + hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()[:16]
