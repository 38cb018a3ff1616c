"""Grounding: which parts of the diagram the conversations mention, and whether roles stay in role.

Matching rules (all case-insensitive):

- Text and names are split into words on anything that is not a letter or digit, so underscores
  count as spaces (``JUNIOR_DEVELOPER`` is "junior developer"); every word is reduced to a simple
  singular (``-ies`` → ``-y``; ``-ches/-shes/-sses/-xes/-zes`` lose ``-es``; a final ``-s`` goes
  unless the word ends in ``ss``, ``us`` or ``is``), on both sides, so "counselors" matches
  ``COUNSELOR``.
- An **entity** is mentioned when its name, or its alias, appears as a whole-word phrase.
- An **attribute** with a comment (``string job "nurse on night shifts"``: the comment holds the
  fact) is mentioned when at least half of the comment's content words appear in one
  conversation; an attribute without one when its name appears as a phrase
  (``proficient_language java`` declares the attribute ``java``: "java" must appear).
- A **relation** is mentioned when its label appears as a phrase, or when every content word of
  the label (stop words removed) appears in the same conversation; a relation without a label
  when both its entities are mentioned in the same conversation.
- A **note** (a ``%%`` line) is mentioned when at least half of its content words appear in the
  same conversation. A leading ``Key:`` of up to three words is not part of the content
  (``Topic: marriage guidance`` needs "marriage" or "guidance").

Coverage of a kind is the fraction of its items mentioned by at least one conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W_]+")
_KEY_PREFIX = re.compile(r"^\s*([^\W_]+(?:[\s_-]+[^\W_]+){0,2})\s*:\s*(.+)$")
NOTE_FRACTION = 0.5

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "else",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "he",
        "she",
        "they",
        "them",
        "their",
        "his",
        "her",
        "him",
        "we",
        "us",
        "our",
        "you",
        "your",
        "i",
        "me",
        "my",
        "mine",
        "yours",
        "not",
        "no",
        "nor",
        "so",
        "too",
        "very",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "just",
        "than",
        "also",
        "each",
        "other",
        "some",
        "any",
        "all",
        "both",
        "either",
        "neither",
        "such",
        "own",
        "same",
        "only",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "why",
        "how",
        "up",
        "down",
        "out",
        "off",
        "again",
        "further",
        "once",
        "he's",
        "she's",
        "it's",
        "i'm",
        "you're",
        "we're",
        "they're",
        "per",
        "via",
        "etc",
    ]
)


def singular(word: str) -> str:
    """A crude singular: enough to match "counselors" with "counselor" (see the module docstring)."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Casefolded, singularised words of ``text`` (underscores and punctuation separate words)."""
    return [singular(w) for w in _WORD.findall(text.casefold())]


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if w not in STOP_WORDS)


@dataclass(frozen=True)
class GroundingItem:
    """One thing of the diagram a conversation can mention."""

    kind: str  # entity | attribute | relation | note
    name: str  # how the report shows it
    phrases: tuple[str, ...] = ()  # " w1 w2 " phrases; any one present is a mention
    all_words: frozenset[str] = frozenset()  # every one present (in one conversation) is a mention
    some_words: frozenset[str] = frozenset()  # at least NOTE_FRACTION of them is a mention

    def mentioned_in(self, padded_text: str, vocabulary: frozenset[str] | set[str]) -> bool:
        if any(phrase in padded_text for phrase in self.phrases):
            return True
        if self.all_words and self.all_words <= vocabulary:
            return True
        if self.some_words:
            found = sum(1 for w in self.some_words if w in vocabulary)
            return found >= NOTE_FRACTION * len(self.some_words)
        return False


def _phrase(text: str) -> str | None:
    found = words(text)
    return f" {' '.join(found)} " if found else None


def _diagram_dict(diagram: Any) -> dict[str, Any]:
    if isinstance(diagram, dict):
        return diagram
    to_dict = getattr(diagram, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError("expected a Diagram (with to_dict()) or its dict form")


def _note_text(note: Any) -> str:
    if isinstance(note, str):
        return note
    if isinstance(note, dict):
        return str(note.get("text") or note.get("content") or "")
    return str(getattr(note, "text", note))


def grounding_items(diagram: Any) -> list[GroundingItem]:
    """Entities, attributes, relations and notes of a Diagram (or its ``to_dict()`` form)."""
    data = _diagram_dict(diagram)
    items: list[GroundingItem] = []
    entities = data.get("entities") or {}
    entity_phrases: dict[str, tuple[str, ...]] = {}
    for name, entity in entities.items():
        entity = entity or {}
        phrases = tuple(p for p in (_phrase(name), _phrase(entity.get("alias") or "")) if p)
        entity_phrases[name] = phrases
        items.append(GroundingItem("entity", name, phrases))
    for name, entity in entities.items():
        for attribute in (entity or {}).get("attributes") or []:
            shown = f"{name}.{attribute.get('name')}"
            value = content_words(str(attribute.get("comment") or ""))
            if value:  # the comment holds the fact ("Dr. Lee", "nurse on night shifts")
                items.append(GroundingItem("attribute", f"{shown} ({attribute.get('comment')})", some_words=value))
                continue
            phrase = _phrase(str(attribute.get("name") or ""))
            if phrase:
                items.append(GroundingItem("attribute", shown, (phrase,)))
    for relation in data.get("relationships") or []:
        label = str(relation.get("label") or "").strip()
        left, right = relation.get("left", ""), relation.get("right", "")
        shown = f"{left} {label or '—'} {right}"
        if label:
            phrase = _phrase(label)
            items.append(GroundingItem("relation", shown, (phrase,) if phrase else (), all_words=content_words(label)))
        else:
            # No label: both ends in one conversation. Expressed as a phrase-free "all words"
            # item over the entities' names.
            items.append(GroundingItem("relation", shown, all_words=frozenset(words(left)) | frozenset(words(right))))
    for note in data.get("notes") or []:
        text = _note_text(note).strip()
        match = _KEY_PREFIX.match(text)
        body = match.group(2) if match else text
        found = content_words(body)
        if found:
            items.append(GroundingItem("note", text, some_words=found))
    return items


KINDS = ("entity", "attribute", "relation", "note")


def coverage(texts: Sequence[str], diagram: Any) -> dict[str, Any]:
    """Coverage of the diagram by ``texts`` (one text per conversation).

    Returns, per kind (``entities``, ``attributes``, ``relations``, ``notes``): ``coverage``
    (fraction of items mentioned at least once; None when the diagram has none), ``mentioned``,
    ``total`` and ``items`` (each with the number and fraction of conversations mentioning it);
    and ``overall`` over all items.
    """
    items = grounding_items(diagram)
    counts = [0] * len(items)
    for text in texts:
        found = words(text)
        padded = f" {' '.join(found)} "
        vocabulary = set(found)
        for index, item in enumerate(items):
            if item.mentioned_in(padded, vocabulary):
                counts[index] += 1
    total_texts = len(texts)
    result: dict[str, Any] = {}
    for kind in KINDS:
        rows = [
            {"name": item.name, "conversations": count, "fraction": count / total_texts if total_texts else 0.0}
            for item, count in zip(items, counts)
            if item.kind == kind
        ]
        mentioned = sum(1 for row in rows if row["conversations"])
        result[kind + "s" if kind != "entity" else "entities"] = {
            "coverage": mentioned / len(rows) if rows else None,
            "mentioned": mentioned,
            "total": len(rows),
            "items": rows,
        }
    mentioned = sum(1 for count in counts if count)
    result["overall"] = {
        "coverage": mentioned / len(items) if items else None,
        "mentioned": mentioned,
        "total": len(items),
    }
    return result


# --- role consistency (concept drift) -------------------------------------------------------------

_FIRST_PERSON = frozenset(["i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll"])
_SECOND_PERSON = frozenset(["you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'd", "you'll"])
_SEEKING = re.compile(
    r"\b(?:can you|could you|would you|will you|help me|what should i|what can i|how do i|how can i|"
    r"how should i|should i|do you think|any (?:advice|tips|suggestions|ideas)|i need|i want|"
    r"i'm (?:struggling|having|trying|not sure|worried|confused|stuck)|i don't (?:know|understand)|"
    r"i have a (?:problem|question)|i was wondering|is it (?:normal|okay|ok))\b"
)
_ADVISING = re.compile(
    r"\b(?:you should|you could|you can|you might|you may want|you need to|"
    r"(?<!i'll )(?<!i will )(?<!let me )try (?:to|using|adding|talking|writing|this)|"
    r"i (?:recommend|suggest|would suggest|'d suggest|would recommend)|consider|"
    r"it'?s (?:important|helpful|normal|understandable|a good idea)|it is (?:important|helpful|"
    r"normal|understandable)|make sure|let'?s|for example|step \d|first,|second,|finally,|"
    r"remember that|it (?:may|might|can) help|it sounds like|sorry to hear|"
    # offering help, as a helper does
    r"i can help|can i help|i could help|can i assist|(?:happy|glad|here) to help|glad i could|"
    r"let me (?:know|see|help|explain|show)|you'?re (?:most )?welcome|you are welcome|"
    r"what seems to be|tell me (?:more|about))\b"
)
# "thank you" is the user's phrase as much as anyone's: not second-person address.
_THANKS = re.compile(r"\bthank(?:s| you)\b")
_TOKEN = re.compile(r"\w+(?:['’]\w+)*")


def role_signals(text: str) -> tuple[int, int]:
    """(user-style signals, assistant-style signals) found in one turn.

    User style: it asks (a question mark), it seeks help (phrases such as "can you", "what should
    I", "I'm struggling"), it talks about oneself (first-person singular words ≥ 6 % of words).
    Assistant style: it advises, guides or offers help (phrases such as "you should", "I
    recommend", "step 1", "it sounds like", "I can help"; weighs two signals), it addresses the
    other (second-person words ≥ 4 % of words, "thank you" not counted).
    """
    lowered = text.casefold().replace("’", "'")
    tokens = _TOKEN.findall(_THANKS.sub(" ", lowered))
    if not tokens:
        return 0, 0
    first = sum(1 for t in tokens if t in _FIRST_PERSON) / len(tokens)
    second = sum(1 for t in tokens if t in _SECOND_PERSON) / len(tokens)
    user = int("?" in lowered) + int(bool(_SEEKING.search(lowered))) + int(first >= 0.06)
    assistant = 2 * int(bool(_ADVISING.search(lowered))) + int(second >= 0.04)
    return user, assistant


def reads_as(text: str) -> str:
    """Which role's style dominates a turn's signals: "user", "assistant" or "neutral".

    Advice phrases weigh two signals: an advising turn that also asks a question (counsellors
    do) still reads as the assistant.
    """
    user, assistant = role_signals(text)
    if user > assistant:
        return "user"
    if assistant > user:
        return "assistant"
    return "neutral"


def role_consistency(user_texts: Iterable[str], assistant_texts: Iterable[str]) -> dict[str, Any]:
    """How often each role speaks in its own style (a proxy for role drift; see docs/report.md).

    Per role: ``n`` turns, ``in_role`` (fraction that do not read as the other role), and
    ``reads_as_other`` (1 − in_role). ``overall`` is the mean of the two ``in_role`` values.
    """
    result: dict[str, Any] = {}
    for role, other, texts in (("user", "assistant", user_texts), ("assistant", "user", assistant_texts)):
        verdicts = [reads_as(text) for text in texts]
        n = len(verdicts)
        swapped = sum(1 for v in verdicts if v == other)
        result[role] = {
            "n": n,
            "in_role": (n - swapped) / n if n else None,
            "reads_as_other": swapped / n if n else None,
            "reads_as_own": sum(1 for v in verdicts if v == role) / n if n else None,
        }
    values = [result[r]["in_role"] for r in ("user", "assistant") if result[r]["in_role"] is not None]
    result["overall"] = sum(values) / len(values) if values else None
    return result
