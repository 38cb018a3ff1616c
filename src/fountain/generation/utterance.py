"""Turn-by-turn utterances: one line of one role, cleaned of labels and stage directions, checked,
and cut at a sentence end when the model ran out of tokens."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from fountain.generation.rules import Rejected, Rules
from fountain.generation.validate import check_message, words

_SPACE = re.compile(r"\s+")


def _role_pattern(roles: Iterable[str]) -> re.Pattern[str]:
    names = {"user", "assistant", "human", "ai", "gpt", "bot", "system"}
    for role in roles:
        role = role.strip()
        if role:
            names.add(role.lower())
            names.add(role.replace("_", " ").lower())
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        rf"(?:^|\n|(?<=[.!?\"”)]\s))\s*[*_#>\"]*\s*(?:the\s+)?(?:{alternatives})\s*[*_]*\s*(?:\([^)\n]{{0,40}}\))?\s*[*_]*\s*:[*_]*",
        re.I,
    )


@lru_cache(maxsize=32)
def _cached_role_pattern(roles: tuple[str, ...]) -> re.Pattern[str]:
    return _role_pattern(roles)


def clean_utterance(text: str, roles: Sequence[str] = ()) -> str:
    """One turn-by-turn utterance made clean: role prefixes stripped, cut where the model starts
    writing the other side's line (``COUNSELOR:``), quotes around the whole removed, whitespace
    collapsed. May return "" (which validation then rejects)."""
    if not isinstance(text, str):
        return ""
    pattern = _cached_role_pattern(tuple(roles))
    text = text.strip()
    # Strip any leading role labels ("COUNSELEE: ", "**User:** ").
    while True:
        match = pattern.match(text)
        if not match or match.start() != 0:
            break
        text = text[match.end() :].lstrip()
    # Cut at the first role marker later in the text: the model began the other side's line.
    match = pattern.search(text)
    if match:
        text = text[: match.start()]
    text = _STAGE.sub(" ", text)  # *smiles warmly*
    text = _SPACE.sub(" ", text).strip()
    if len(text) >= 2 and text[0] in '"“' and text[-1] in '"”' and text.count('"') <= 2:
        text = text[1:-1].strip()
    return text


# *smiles warmly*, (smiling, a bit nervously): stage directions, stripped from a line
_STAGE = re.compile(
    r"\*[^*\n]{1,60}\*|\((?:smil|laugh|nodd?|sigh|grin|chuckl|paus|wink|shrug)[a-z]*\b[^()\n]{0,40}\)", re.I
)


# A line that tells the scene instead of speaking in it (read in the local model's tech_support and
# marriage runs): a gesture in the past tense ("I laughed and said, ...", "I turned to face you"),
# a quoted line with its speech verb ("You added, "But let me ...").
_GESTURE = re.compile(
    r"\b(?:i|you|he|she|they|we|the [a-z]+)\s+(?:laughed|smiled|grinned|chuckled|nodded|sighed|shrugged|winked|"
    r"turned (?:to|back|around)|leaned (?:in|back|forward)|looked at (?:you|me|him|her))\b",
    re.I,
)
_SPEECH_VERB = r"(?:said|asked|replied|added|answered|exclaimed|whispered|continued)"
_QUOTED = re.compile(
    rf"\b(?:i|you|he|she|they|we)\s+{_SPEECH_VERB}\s*,?\s*[\"“]|[\"”]\s*,?\s*(?:i|you|he|she|they|we)\s+{_SPEECH_VERB}\b",
    re.I,
)


def check_utterance(text: str, role: str, rules: Rules) -> Rejected | None:
    """:func:`check_message` plus the turn-by-turn rule ``elimination:narration``: an utterance that
    opens by naming a role in the third person ("The counselor smiles and says ..."), narrates a
    gesture ("I laughed and said", "The agent looked at you") or reports a quoted line ("You
    added, "...") tells a scene instead of speaking in it."""
    problem = check_message(text, role, rules)
    if problem is not None:
        return problem
    names = {r.replace("_", " ").strip().lower() for r in rules.roles if r.strip()}
    head = " ".join(words(text)[:4]) + " "
    for name in names:
        if head.startswith((f"the {name} ", f"the {name}'s ")):  # "The customer's voice has a low ..."
            return Rejected("elimination:narration", f"the {role} narrates instead of speaking: {text.strip()[:60]!r}")
    for pattern in (_GESTURE, _QUOTED):
        match = pattern.search(text)
        if match:
            return Rejected(
                "elimination:narration",
                f"the {role} narrates instead of speaking ({match.group(0)!r}): {text.strip()[:60]!r}",
            )
    return None


def trim_to_sentence(text: str) -> str:
    """Drop a trailing unfinished sentence (an utterance cut at its token limit)."""
    match = None
    for match in re.finditer(r"[.!?…](?:[\"'”)\]]*)(?=\s|$)", text):  # noqa: B007 - the last one
        pass
    if match is None or match.end() < len(text) // 5:
        return text.strip()
    return text[: match.end()].strip()
