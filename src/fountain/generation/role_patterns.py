"""The patterns of ``gate:role_reversal`` (:class:`fountain.generation.gates.RoleReversal`),
each compiled once per scene, with the substrings every match holds (the exact shortcut of
:func:`fountain.generation.gate_text.absent`: a message without any is not searched)."""

from __future__ import annotations

import re
from functools import lru_cache

from fountain.generation.scene import label_words

SERVICE = re.compile(
    r"\b(?:how (?:can|may|could) i (?:help|assist|support) you"
    r"|what brings you (?:here|in|to)"
    r"|welcome to (?:my|our|the) (?:clinic|office|practice|session|class|shop|store|service)"
    r"|what can i do for you"
    r"|i(?:'m| am) here to (?:help|support|listen to) you"
    r"|thank you for (?:coming|reaching out|contacting)"
    r"|how are you feeling today"
    # the helper's voice, seen in the 135M model's user lines (issue 14's local runs)
    r"|i(?:'ll| will|'d| would|'m| am)? (?:always |so )?(?:be )?(?:happy|glad) to help(?: you| with (?:that|this)|(?=\s*[.!]))"
    r"|glad (?:that )?you found (?:the|this|my|that) (?:information|advice|answer|explanation)s? helpful"
    r"|glad (?:that )?you found (?:me|us)\b|set up (?:the|a|your) (?:session|appointment) for you"
    r"|(?:with|on) your next case"
    # the helper's work in the user's mouth (README command 1's counselee: "I've been so passionate
    # about helping people", "some of my clients struggle with marriage issues")
    r"|passionate about helping (?:people|others|couples|families)"
    r"|my (?:work|job) (?:is|isn't|is not) (?:just |only )?(?:about )?help(?:ing)? (?:people|others|couples|families))\b",
    re.I,
)
# one in every match (each alternative above holds one; tests/generation/test_gates.py checks it)
SERVICE_HINTS = (
    "how can i ",
    "how may i ",
    "how could i ",
    "what brings you ",
    "welcome to ",
    "what can i do for you",
    "here to ",
    "thank you for ",
    "how are you feeling today",
    " to help",
    "glad ",
    "next case",
    "helping ",
    "my work ",
    "my job ",
    "set up ",
)

# Words for the people a helper serves: "my clients" is the helper speaking, unless the user's own
# role is one that has clients or customers of its own (a business owner calling support).
_CLIENTELE = ("clients", "patients")
_HAS_CLIENTELE = ("customer", "client", "user", "owner", "manager", "business")
# After "the <user role>": a word or mark that makes it a person talked about ("the counselee is",
# "the counselee's", "the counselee."), not a compound ("the customer service", "the student loan").
_THIRD_PERSON_NEXT = (
    r"(?:'s\b|s'|\s*[,.;!?)]|\s*$|\s+(?:is|was|has|had|feels|felt|needs|needed|wants|wanted|says|said|thinks|"
    r"believes|seems|can|could|should|would|will|may|might|must|and|or|who|through|in|with|about|from|to|"
    r"here|there|now|again)\b)"
)
_HELP_VERB = r"(?:help|support|assist|counsel|guide|treat|serve|teach|tutor|coach)(?:s|ed|ing)?"


# one in every match of the "introduces itself as the other role" pattern of role_patterns
INTRODUCTION_HINTS = ("i'm ", "i am ", "i work as ", "my work as ", "as your ")


@lru_cache(maxsize=64)
def relation_hints(possessive: str, relations: tuple[str, ...]) -> tuple[str, ...]:
    """What every match of "<possessive><relation>" holds, lower-cased: the possessive alone
    when a relation is not ASCII (IGNORECASE may then match letters ``str.lower`` does not)."""
    if not all(r.isascii() for r in relations):
        return (possessive,)
    return tuple(possessive + r.lower() for r in relations)


@lru_cache(maxsize=64)
def role_patterns(
    user_role: str, assistant_role: str, relations: tuple[str, ...]
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None]:
    """The role-reversal patterns of a scene, compiled once: a role label, the user introducing
    itself as the assistant's role, "your <relation>" (user side), "my <relation>" (assistant side)."""
    names = {"user", "assistant", label_words(user_role).lower(), label_words(assistant_role).lower()}
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    label = re.compile(rf"(?:^|\n)\s*[*_\"'>#]*\s*(?:the\s+)?(?:{alternatives})\s*[*_]*\s*:", re.I)
    other = label_words(assistant_role).lower()
    me = re.compile(
        rf"\b(?:i(?:'m| am)|i work as|my work as|as your) (?:a |an |the |your )?(?:\w+ ){{0,2}}{re.escape(other)}\b",
        re.I,
    )
    if not relations:
        return label, me, None, None
    joined = "|".join(re.escape(n) for n in relations)
    return label, me, re.compile(rf"\byour (?:{joined})\b", re.I), re.compile(rf"\bmy (?:{joined})\b", re.I)


@lru_cache(maxsize=64)
def own_role_pattern(user_role: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A user line that talks about its own role as someone else, and the substrings one of its
    matches always holds (the shortcut of :func:`~fountain.generation.gate_text.absent`):

    - a role in parentheses, "(you)" / "(me)": "to help the counselee (you)";
    - a helping verb on its own role or a client: "support the counselee", "help your client";
    - "the <own role>" as a person talked about ("the counselee is", "the counselee's"), not after
      "I'm" / "as" ("as the counselee, I ...");
    - its own role's plural, or clients/patients, as its own people ("my counselees", "my clients").
    """
    own = label_words(user_role).lower()
    own_words = [own] if own not in ("user", "assistant", "") else []
    people = [re.escape(w) for w in (*own_words, "client")]
    group = "|".join(people)
    clientele = [] if own.endswith(_HAS_CLIENTELE) else [*(f"{re.escape(w)}s" for w in own_words), *_CLIENTELE]
    parts = [
        r"\b[\w'-]+\s*\((?:you|me)\)",
        rf"\b{_HELP_VERB} (?:the|your|this|that|a|an|my) (?:{group})s?\b",
    ]
    if own_words:
        parts.append(rf"(?<!\bi'm )(?<!\bi am )(?<!\bas )(?<!\bi was )\bthe {re.escape(own)}{_THIRD_PERSON_NEXT}")
    if clientele:
        parts.append(rf"\bmy (?:{'|'.join(clientele)})\b")
    hints = ("(you)", "(me)", "client", "patient", *own_words)
    return re.compile("|".join(parts), re.I), hints
