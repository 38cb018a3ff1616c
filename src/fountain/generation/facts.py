"""The scene's facts: what a conversation must mention to be "in the scene".

A fact is one ``%%`` note of the diagram or one attribute comment (``string concern "frequent
arguments about money and chores"``). Its *keywords* are its content words: not stop words, not
common conversational words ("brings", "today", "help", "relationship"), not a word of a role or
entity name, not a bare attribute name, and not a leading ``Key:`` ("Topic: marriage guidance"
keeps "marriage" and "guidance"). A conversation mentions a fact when it contains one of its
keywords, compared by a crude stem (the first five letters once ``-ing``/``-ed``/``-s``/``-ly``
are off), so "married" meets "marriage".

Shared by the grounding gate (:mod:`fountain.generation.gates`), the role-play scene cards
(:mod:`fountain.generation.roleplay`) and the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fountain.generation.stopwords import STOP_WORDS

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_KEY_PREFIX = re.compile(r"^\s*([^\W_]+(?:[\s_-]+[^\W_]+){0,2})\s*:\s*(.+)$")
STEM_CHARS = 5

#: Words too common in any conversation to show it is about *this* scene (besides stop words).
COMMON_WORDS = frozenset(
    [
        "also",
        "always",
        "another",
        "anything",
        "around",
        "ask",
        "asked",
        "asks",
        "back",
        "bring",
        "brings",
        "call",
        "came",
        "come",
        "comes",
        "comment",
        "comments",
        "could",
        "day",
        "days",
        "describe",
        "different",
        "does",
        "done",
        "each",
        "even",
        "ever",
        "every",
        "feel",
        "feeling",
        "feels",
        "find",
        "first",
        "get",
        "gets",
        "give",
        "gives",
        "go",
        "goes",
        "going",
        "good",
        "got",
        "great",
        "happen",
        "help",
        "helps",
        "hello",
        "hi",
        "how",
        "know",
        "last",
        "like",
        "little",
        "long",
        "look",
        "lot",
        "make",
        "makes",
        "many",
        "may",
        "maybe",
        "might",
        "much",
        "need",
        "needs",
        "never",
        "new",
        "next",
        "nice",
        "now",
        "okay",
        "one",
        "people",
        "person",
        "place",
        "please",
        "really",
        "right",
        "said",
        "say",
        "says",
        "see",
        "seem",
        "seems",
        "something",
        "sometimes",
        "start",
        "started",
        "still",
        "sure",
        "take",
        "takes",
        "talk",
        "talking",
        "tell",
        "thank",
        "thanks",
        "thing",
        "things",
        "think",
        "time",
        "times",
        "today",
        "try",
        "two",
        "understand",
        "use",
        "used",
        "want",
        "wants",
        "way",
        "ways",
        "well",
        "went",
        "work",
        "would",
        "yes",
        "yet",
        "relationship",
        "relationships",
        "attribute",
        "attributes",
        "entity",
        "entities",
        "topic",
        "note",
        "notes",
        "frequency",
        "date",
        "start",
        "place",
        "takes",
        "session",
        "sessions",
    ]
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem (memoised: the same words come back in every conversation): lower-cased, a common suffix off, cut to :data:`STEM_CHARS` letters."""
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word[:STEM_CHARS]


def stems(text: str) -> set[str]:
    """The stems of every word of ``text``."""
    return {stem(w) for w in _WORD.findall(text)}


@dataclass(frozen=True)
class Fact:
    """One note or attribute comment, with the stems that show a conversation mentions it."""

    text: str
    keywords: frozenset[str]

    def mentioned_in(self, text_stems: set[str]) -> bool:
        return bool(self.keywords & text_stems)


def _keywords(text: str, excluded: set[str]) -> frozenset[str]:
    match = _KEY_PREFIX.match(text)
    if match:
        text = match.group(2)
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS or word in COMMON_WORDS:
            continue
        if word.isdigit() and len(word) < 2:
            continue
        if not word.isdigit() and len(word) < 3:
            continue
        s = stem(word)
        if s not in excluded:
            found.add(s)
    return frozenset(found)


def _name_stems(names: Iterable[str]) -> set[str]:
    return {stem(w) for name in names for w in _WORD.findall(name.replace("_", " "))}


def scene_facts(diagram: Any) -> tuple[Fact, ...]:
    """The facts of ``diagram`` (notes, then attribute comments) that have at least one keyword."""
    if diagram is None:
        return ()
    entities = list(getattr(diagram, "entities", ()) or ())
    excluded = _name_stems(entities)
    comments: list[str] = []
    entity = getattr(diagram, "entity", None)
    for name in entities:
        try:
            attributes = entity(name).attributes if callable(entity) else ()
        except KeyError:
            attributes = ()
        for attribute in attributes:
            if attribute.comment and attribute.comment.strip():
                comments.append(attribute.comment.strip())
    facts = []
    for text in [*(getattr(diagram, "notes", ()) or ()), *comments]:
        keywords = _keywords(text, excluded)
        if keywords:
            facts.append(Fact(text.strip(), keywords))
    return tuple(facts)


def mentioned_facts(facts: Iterable[Fact], texts: Iterable[str]) -> list[Fact]:
    """The facts that ``texts`` (a conversation's messages) mention."""
    found = set()
    for text in texts:
        found |= stems(text)
    return [fact for fact in facts if fact.mentioned_in(found)]
