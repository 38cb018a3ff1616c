"""The quality section of `fountain report`: what a reader would object to, measured per turn.

Each figure applies the generation gates (:mod:`fountain.generation.gates`) to the exported
conversations, one message at a time, so the report and the gates agree on what "cut off" or
"echo" means. Every metric carries its definition, what good looks like, and the figure of the
Janus GPT-4 outputs (``coding_assist_gpt``, measured with this module) as a reference line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fountain.generation.facts import mentioned_facts
from fountain.generation.gates import (
    CutOff,
    Placeholder,
    RoleReversal,
    echoes,
    prose_grams,
)
from fountain.generation.scene import Scene
from fountain.generation.validate import words

# (what it measures, what good looks like, the Janus GPT-4 figure)
DEFINITIONS: dict[str, tuple[str, str, float | None]] = {
    "cut_off_rate": (
        "share of messages that end mid-sentence (no closing punctuation, or at 'Dr.')",
        "at most 5%",
        0.0,
    ),
    "echo_rate": (
        "share of messages holding most of an earlier message of the same conversation (>= 50% of its "
        "word 4-grams, which make >= 1/3 of their own)",
        "at most 5%",
        0.0,
    ),
    "user_as_assistant_rate": (
        "share of user messages that speak as the assistant's role (role labels, 'welcome to our "
        "clinic', 'how can I help you', introducing itself as that role, 'your partner' when the diagram "
        "puts the partner on the user's side): the gate gate:role_reversal's rules",
        "at most 5%",
        0.0,
    ),
    "placeholder_rate": (
        "share of messages that are placeholders: names only, '[Your Name]', 'the user', JSON fragments, "
        "meta-text ('describe a scene', 'role-play'), fewer than 2 words",
        "0%",
        0.0,
    ),
    "repetition_within": (
        "mean over conversations of the share of word 4-grams that repeat an earlier 4-gram of the same "
        "conversation (code aside)",
        "low; a model in a loop scores above 0.3",
        0.037,
    ),
    "neutral_share": (
        "share of turns the role-consistency heuristic reads as neither role (name-only or very short turns "
        "read as neutral and count as in role)",
        "low: a high share means 'in role' says little",
        0.19,
    ),
    "agreement_rate": (
        "share of messages that open by agreeing with or praising the other speaker ('I completely agree', "
        "'You're right', 'I'm glad...', 'Absolutely', 'That's a great...', 'Thank you for sharing')",
        "low (a pleasantry now and then); above 40% the conversation mostly stands still",
        0.112,
    ),
    "grounded_rate": (
        "share of conversations mentioning at least one scene fact (a %% note or an attribute comment); "
        "bare attribute names and common words do not count",
        "100% when the diagram has facts",
        1.0,
    ),
}


# A message that opens by agreeing with or praising the other speaker (after an optional "Yes,").
AGREEMENT_OPENER = re.compile(
    r"""^\W*(?:(?:yes|oh|well|wow|ah)[,!.]?\s+)?(?:
      i\s+(?:completely\s+|totally\s+|absolutely\s+|fully\s+|really\s+|wholeheartedly\s+)?agree
    | i\s+couldn['’]?t\s+agree
    | you(?:['’]re|\s+are)\s+(?:so\s+|absolutely\s+|completely\s+|totally\s+|quite\s+)?right
    | (?:i['’]m|i\s+am)\s+(?:so\s+|really\s+|truly\s+)?glad
    | (?:that['’]s|that\s+is|what\s+a|it['’]s)\s+(?:such\s+)?(?:a\s+)?
      (?:great|wonderful|excellent|fantastic|beautiful|powerful|amazing|lovely)\b
    | thank(?:s|\s+you)(?:\s+so\s+much)?\s+for\s+sharing
    | (?:absolutely|exactly|totally|definitely)\b
    | your\s+(?:story|summary|perspective|message|words)\s+(?:is|are)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
AGREEMENT_WARN = 0.4


def _within_repetition(texts: Sequence[str]) -> float:
    seen: set[tuple[str, ...]] = set()
    total = repeated = 0
    from fountain.generation.gates import prose

    for text in texts:
        tokens = words(prose(text))
        for i in range(len(tokens) - 3):
            gram = tuple(tokens[i : i + 4])
            total += 1
            if gram in seen:
                repeated += 1
            seen.add(gram)
    return repeated / total if total else 0.0


def quality_section(
    conversations: Sequence[Sequence[tuple[str, str]]],
    *,
    diagram: Any = None,
    user_role: str | None = None,
    assistant_role: str | None = None,
    role_consistency: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Figures, definitions and warnings for ``conversations`` (each a list of (role, text))."""
    scene = Scene.from_diagram(diagram, user_role, assistant_role)  # the gates' rules, relations included
    facts = scene.facts
    cut, place, role = CutOff(), Placeholder(), RoleReversal()
    messages = cut_n = place_n = echo_n = users = reversed_n = grounded = agreeing = 0
    repetition: list[float] = []
    for conversation in conversations:
        texts = [(r, t) for r, t in conversation if r in ("user", "assistant")]
        earlier: list[frozenset[tuple[str, ...]]] = []
        for r, text in texts:
            messages += 1
            cut_n += not cut.check_message(r, text, scene)[0]
            agreeing += AGREEMENT_OPENER.match(text) is not None
            place_n += not place.check_message(r, text, scene)[0]
            grams = prose_grams(text)
            echo_n += any(
                echoes(grams, before, scene.quality.echo, previous=k == len(earlier) - 1)
                for k, before in enumerate(earlier)
            )
            earlier.append(grams)
            if r == "user":
                users += 1
                reversed_n += not role.check_message(r, text, scene)[0]
        repetition.append(_within_repetition([t for _, t in texts]))
        if facts and mentioned_facts(facts, (t for _, t in texts)):
            grounded += 1
    n = len(conversations)
    figures: dict[str, Any] = {
        "cut_off_rate": cut_n / messages if messages else None,
        "echo_rate": echo_n / messages if messages else None,
        "user_as_assistant_rate": reversed_n / users if users else None,
        "placeholder_rate": place_n / messages if messages else None,
        "repetition_within": sum(repetition) / n if n else None,
        "neutral_share": _neutral(role_consistency),
        "agreement_rate": agreeing / messages if messages else None,
        "grounded_rate": grounded / n if (n and facts) else None,
        "facts": len(facts),
    }
    return {
        "figures": figures,
        "definitions": {k: {"measures": d[0], "good": d[1], "janus_gpt4": d[2]} for k, d in DEFINITIONS.items()},
        "warnings": warnings(figures, role_consistency),
    }


def _neutral(role_consistency: dict[str, Any] | None) -> float | None:
    if not role_consistency:
        return None
    n = own = other = 0
    for role in ("user", "assistant"):
        r = role_consistency.get(role) or {}
        if not r.get("n"):
            continue
        n += r["n"]
        own += round((r.get("reads_as_own") or 0) * r["n"])
        other += round((r.get("reads_as_other") or 0) * r["n"])
    return (n - own - other) / n if n else None


def warnings(figures: dict[str, Any], role_consistency: dict[str, Any] | None) -> list[str]:
    """What the run summary must say loudly."""
    out = []
    if figures.get("facts") and figures.get("grounded_rate") == 0:
        out.append("GROUNDING IS 0: no conversation mentions any fact of the scene (notes, attribute comments)")
    overall = (role_consistency or {}).get("overall")
    if overall is not None and overall < 0.9:
        out.append(f"IN-ROLE IS {overall:.0%} (below 90%): turns read as the other role")
    rate = figures.get("user_as_assistant_rate")
    if rate is not None and rate > 0.05:
        out.append(f"{rate:.0%} of user turns speak as the assistant's role (above 5%)")
    agreement = figures.get("agreement_rate")
    if agreement is not None and agreement > AGREEMENT_WARN:
        out.append(
            f"{agreement:.0%} of messages open by agreeing with or praising the other speaker (above "
            f"{AGREEMENT_WARN:.0%}): the conversations mostly stand still"
        )
    for key, label in (("cut_off_rate", "cut off"), ("echo_rate", "echo an earlier message")):
        value = figures.get(key)
        if value is not None and value > 0.05:
            out.append(f"{value:.0%} of messages {label} (above 5%)")
    return out
