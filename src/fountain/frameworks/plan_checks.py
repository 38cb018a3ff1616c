"""The checks of a framework plan, one step each (:func:`fountain.frameworks.plan.plan_framework`
runs them in this order): names, the framework's use of a rater, personas, iterations, target,
the PE-only options, k, and where the real data comes from. Each raises a
:class:`~fountain.errors.FountainError` naming the option or setup.yaml key to change."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, RealDataError
from fountain.run.option_groups import RatingOptions

FRAMEWORKS = ("Gen", "GenLLM", "Filter", "Feedback")
RATERS = ("PE", "RF")
# Filter with a --target and no --iterations stops after this many rounds at most.
DEFAULT_FILTER_ROUNDS = 10
DEFAULT_K = {"PE": 1, "RF": 5}


def resolve_name(value: str, choices: Sequence[str], what: str, location: str) -> str:
    """``value`` as one of ``choices`` (case does not matter); else an error with the closest."""
    for choice in choices:
        if value.strip().casefold() == choice.casefold():
            return choice
    lowered = {c.casefold(): c for c in choices}
    close = get_close_matches(value.strip().casefold(), list(lowered), n=1, cutoff=0.5)
    hint = (f"did you mean {lowered[close[0]]}? " if close else "") + f"{what}s: {', '.join(choices)}"
    raise FountainError(f"unknown {what} {value!r}", location=location, hint=hint)


def spec_has(spec: Any, block: str, key: str) -> bool:
    """Whether setup.yaml itself sets ``block.key`` (not a default)."""
    data = getattr(spec, "data", None) or {}
    section = data.get(block) if isinstance(data, dict) else None
    return isinstance(section, dict) and section.get(key) is not None


def framework_and_rater(spec: Any, asked: RatingOptions) -> tuple[str, str | None]:
    """The framework (``--framework`` > setup.yaml > Gen) and rater (``--rater`` > setup.yaml),
    checked to fit each other."""
    framework = resolve_name(
        asked.framework or spec.framework or "Gen",
        FRAMEWORKS,
        "framework",
        "--framework" if asked.framework else "framework",
    )
    rater_name = asked.rater or spec.raters.rater
    rater_at = "--rater" if asked.rater else "raters.rater"
    rater = resolve_name(rater_name, RATERS, "rater", rater_at) if rater_name else None
    if framework in ("Gen", "GenLLM") and rater:
        raise FountainError(
            f"the {framework} framework does not use a rater (--rater {rater})",
            location=rater_at,
            hint="--framework Filter rates and accumulates, --framework Feedback runs "
            "Private Evolution (PE); or drop the rater",
        )
    if framework == "Feedback" and rater != "PE":
        _feedback_without_pe(spec, asked, rater)
    return framework, rater


def _feedback_without_pe(spec: Any, asked: RatingOptions, rater: str | None) -> None:
    """Feedback is Private Evolution: without the PE rater it is an error, located where the
    value came from (a command-line option, or a key of setup.yaml)."""
    if rater == "RF":
        raise FountainError(
            "Feedback needs the PE rater; RF cannot steer it (RF is not differentially private)",
            location="--rater" if asked.rater else "raters.rater",
            hint="use --rater PE, or --framework Filter --rater RF"
            if asked.rater
            else "set raters.rater: PE in setup.yaml, or framework: Filter to rate with RF",
        )
    if asked.framework:
        raise FountainError(
            "the Feedback framework (Private Evolution) needs --rater PE",
            location="--framework",
            hint="add --rater PE --real-data FILE --epsilon E",
        )
    locator = spec.locator
    raise FountainError(
        "framework: Feedback in setup.yaml (Private Evolution) needs the PE rater, and none is set",
        location=locator.at(("framework",)) if locator is not None else "framework",
        hint="set raters.rater: PE (with raters.real_data and privacy.epsilon) in "
        "setup.yaml, or pass --rater PE --real-data FILE --epsilon E",
    )


def personas_to_generate(framework: str, personas: int | None) -> int | None:
    """GenLLM's number of generated personas (``--personas``, else the default); None otherwise."""
    if personas is not None and framework != "GenLLM":
        raise FountainError(
            "the number of personas only applies to GenLLM, which generates them",
            location="--personas",
            hint="use it with --framework GenLLM",
        )
    if framework != "GenLLM":
        return personas
    from fountain.generation.enrich import DEFAULT_PERSONAS, MAX_PERSONAS

    personas = DEFAULT_PERSONAS if personas is None else personas
    if not 1 <= personas <= MAX_PERSONAS:
        raise FountainError(
            f"the number of personas must lie between 1 and {MAX_PERSONAS}, got {personas}", location="--personas"
        )
    return personas


def iterations_of(spec: Any, framework: str, asked: int | None, target: int | None) -> int:
    """Rounds (Filter) or PE iterations (Feedback): ``--iterations``, else setup.yaml's; a Filter
    with a target and no iterations of its own gets up to :data:`DEFAULT_FILTER_ROUNDS`."""
    if asked is not None and framework in ("Gen", "GenLLM"):
        raise FountainError(
            f"{framework} makes one pass: it has no iterations",
            location="--iterations",
            hint="rounds are for --framework Filter or Feedback",
        )
    if asked is not None:
        iterations = asked
    elif framework == "Filter" and not spec_has(spec, "privacy", "iterations"):
        target_given = target is not None or spec.generation.target is not None
        iterations = DEFAULT_FILTER_ROUNDS if target_given else 1
    else:
        iterations = spec.privacy.iterations
    if int(iterations) != iterations or iterations < 1:
        raise FountainError(f"iterations must be a positive integer, got {iterations!r}", location="--iterations")
    return int(iterations)


def target_of(spec: Any, framework: str, asked: int | None) -> int | None:
    """The number of conversations to reach (``--target`` > setup.yaml); Feedback has none."""
    if asked is not None and framework == "Feedback":
        raise FountainError(
            "Feedback has no target: its dataset is the last population",
            location="--target",
            hint="use --iterations and --seeds-per-direction instead",
        )
    if framework == "Feedback":
        return None
    target = asked if asked is not None else spec.generation.target
    if target is not None and target < 1:
        raise FountainError(f"the target must be at least 1, got {target}", location="--target")
    return target


def check_pe_only_options(asked: RatingOptions, rater: str | None) -> None:
    """--epsilon, --sigma and --delta belong to the PE rater's privacy budget."""
    if rater == "PE":
        return
    if asked.epsilon is not None:
        raise FountainError(
            "a privacy budget applies to the PE rater only"
            + ("; RF is NOT differentially private" if rater == "RF" else ""),
            location="--epsilon",
            hint="use --rater PE (with --framework Feedback or Filter), or drop --epsilon",
        )
    if asked.sigma is not None:
        raise FountainError(
            "sigma is the noise of the PE rater only", location="--sigma", hint="use --rater PE, or drop --sigma"
        )
    if asked.delta is not None:
        raise FountainError(
            "delta is part of the PE rater's privacy budget", location="--delta", hint="use --rater PE, or drop --delta"
        )


def k_of(spec: Any, asked: int | None, rater: str | None) -> int:
    """Nearest neighbours per vote: ``--k`` > setup.yaml's raters.k > the rater's default."""
    if asked is not None:
        k = asked
    elif spec_has(spec, "raters", "k"):
        k = spec.raters.k
    else:
        k = DEFAULT_K.get(rater or "", 1)
    if k < 1:
        raise FountainError(f"k must be at least 1, got {k}", location="--k")
    return k


def real_data_source(spec: Any, asked: RatingOptions, rater: str | None) -> tuple[Path, str] | None:
    """Where the rater's real conversations are (path, as given): ``--real-data`` (relative to
    the working folder), else setup.yaml's raters.real_data (relative to the spec folder); None
    without a rater. A rater without real data, or real data without a rater, is an error."""
    if asked.real_data is not None:
        if not rater:
            raise FountainError(
                "real data is only read by a rater",
                location="--real-data",
                hint="add --rater PE (differentially private) or --rater RF (not private)",
            )
        return Path(asked.real_data).expanduser(), str(asked.real_data)
    if not rater:
        return None
    if spec.raters.real_data:
        path = Path(spec.raters.real_data).expanduser()
        return (path if path.is_absolute() else Path(spec.folder) / path), spec.raters.real_data
    raise RealDataError(
        f"the {rater} rater needs real conversations to compare with",
        location="--real-data",
        hint="pass --real-data FILE (JSONL in a format fountain exports, or a Janus "
        "outputs.json), or set raters.real_data in setup.yaml",
    )


def load_rated_real_data(spec: Any, rater: str, path: Path, notes: list[str]) -> list[Any]:
    """The real conversations, checked to hold enough of the spec's category for ``rater``."""
    from fountain.raters.realdata import load_real_data

    real = load_real_data(path, default_category=spec.category)
    in_category = sum(1 for r in real if r.category == spec.category)
    hint = "set metadata.category (or category) of the real records to the spec's category"
    if rater == "RF" and in_category < 2:
        raise RealDataError(
            f"RF needs at least 2 real conversations of the spec's category "
            f"{spec.category!r}; the real data has {in_category}",
            location=str(path),
            hint=hint,
        )
    if rater == "PE" and in_category == 0:
        raise RealDataError(
            f"none of the {len(real)} real conversations has the spec's category {spec.category!r}: nothing would vote",
            location=str(path),
            hint=hint,
        )
    if rater == "RF":
        notes.append("RF is NOT differentially private: its decisions depend on every real conversation")
    return real
