"""The ``fake`` provider: deterministic answers, no model, no network, no time.

- With no option, every request gets an answer made from the request itself: a hash of the
  messages seeds a random generator that picks words and role names out of the prompt, and the
  answer honours the request's JSON schema (turn bounds, the instruct shape). Without a schema
  (turn-by-turn mode) it answers one plausible utterance. Any spec thus runs end to end offline.
- With ``replay`` (``--replay FILE``) it answers recorded outputs in order, cycling (with one
  warning when it starts again): a Janus ``outputs.json`` list, or a JSONL file of fountain
  records (``messages``), ShareGPT records, Janus entries or ``{"text": ...}`` raw answers.
- :class:`ScriptedProvider` answers a given list of texts (or raises given errors), for tests.

Every request is kept in ``.requests``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from fountain.errors import FountainError, ProviderError
from fountain.providers.base import Completion, ProviderConfig, Request
from fountain.providers.fake_judge import is_judgement, judge_answer
from fountain.providers.fake_words import _SKIP
from fountain.types import Usage

log = logging.getLogger("fountain.providers.fake")

_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
_ROLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b")
# Words of prompts and formats that would make a silly or a rejected conversation.
_TOPIC = re.compile(r"\btopic:\s*([^.\n%]{1,80})|our work on ([^.\n%\"]{1,80})", re.I)
_TOPIC_SENTENCE = re.compile(r"part of our work on ", re.I)  # the sentence an assistant turn adds once
_AS_A_ROLE = re.compile(r"\bas an? ([A-Za-z_]+) I\b")  # the user template's "as a {user} I ..."
_NOT_ROLES = frozenset({"JSON", "USER", "ASSISTANT", "AI", "OK", "I", "A", "II", "III", "ER"})


def _rng(request: Request) -> random.Random:
    material = json.dumps(
        [[m.role, m.content] for m in request.messages]
        + [request.sample_index, request.seed, request.schema, request.purpose],
        sort_keys=True,
        ensure_ascii=False,
    )
    return random.Random(int.from_bytes(hashlib.sha256(material.encode("utf-8")).digest()[:8], "big"))


def _turn_bounds(schema: dict[str, Any] | None) -> tuple[str, int, int]:
    """("instruct"|"conversation", min turns, max turns) read from a request schema."""
    props = (schema or {}).get("properties") or {}
    if "conversation" in props and "conversations" not in props:
        return "instruct", 1, 1
    conv = props.get("conversations") or {}
    lo = int(conv.get("minItems", 1) or 1)
    hi = int(conv.get("maxItems", max(lo, 3)) or max(lo, 3))
    return "conversation", max(1, lo), max(lo, hi)


def _humanize(role: str) -> str:
    return role.replace("_", " ").lower()


class _Words:
    """Words and role names picked from a prompt, drawn by a seeded generator."""

    def __init__(self, request: Request, rng: random.Random):
        text = request.prompt_text()
        seen: dict[str, None] = {}
        for word in _WORD.findall(text):
            low = word.lower()
            if low not in _SKIP and "%" not in low and "{" not in low:
                seen.setdefault(low, None)
        self.words = list(seen) or ["situation", "plan", "question", "progress", "idea"]
        roles = [r for r in dict.fromkeys(_ROLE.findall(text)) if r not in _NOT_ROLES and len(r) > 2]
        self.user = _humanize(roles[0]) if roles else "user"
        self.assistant = _humanize(roles[1]) if len(roles) > 1 else "assistant"
        self.rng = rng
        # A conversation's turns use distinct templates (a real model does not repeat itself): the
        # first template comes from the system message (the same for every turn of a turn-by-turn
        # conversation), the turn number from the messages that follow it.
        first = request.messages[0].content if request.messages else ""
        self.base = int(hashlib.sha256(first.encode("utf-8")).hexdigest()[:8], 16)
        self.turn = sum(1 for m in request.messages if m.role != "system") // 2
        self.text = text
        topic = _TOPIC.search(text)
        self.topic = " ".join((topic.group(1) or topic.group(2)).split()) if topic else ""
        # A conversation being continued already names it (it is the prefix of the new one),
        # wherever in the prompt the diagram's "Topic:" line comes.
        self.topic_shown = _TOPIC_SENTENCE.search(text) is not None

    def pick(self, n: int = 1) -> list[str]:
        if len(self.words) >= n:
            return self.rng.sample(self.words, n)
        return [self.rng.choice(self.words) for _ in range(n)]


_OPENERS = (
    "Hello,",
    "Hi there,",
    "Good morning,",
    "Thanks for seeing me,",
    "Hey,",
    "So,",
    "Honestly,",
    "Well,",
    "Okay,",
    "Right,",
)
_USER = (
    "{o} as a {user} I keep thinking about {a} and {b}. How should I approach the {c}?",
    "{o} I have a question about {a}. Things with {b} got harder this week, and I am not sure what to do about {c}.",
    "{o} I tried what we discussed about {a}, but {b} still worries me. Could we look at {c} next?",
    "{o} can you explain how {a} relates to {b}? I want to understand the {c} better.",
    "{o} I feel stuck between {a} and {b}. What would you suggest for the {c}?",
    "{o} my biggest worry right now is {a}. When {b} comes up, I freeze. Is that normal for the {c}?",
    "{o} last time {a} went badly and {b} made it worse. Where do I begin with the {c}?",
    "{o} someone told me {a} is the key, yet {b} feels more urgent. Which matters more for the {c}?",
)
_ASSISTANT = (
    "That is a good question. When it comes to {a}, start with small, concrete steps: write down "
    "what happens with {b}, then talk it through calmly. Over the next weeks, watch how the {c} "
    "changes and adjust as you go.",
    "Thank you for sharing that. As your {assistant}, I would first separate {a} from {b}. Look at "
    "each one on its own, decide what matters most, and then plan one change around the {c}.",
    "Let us work through it step by step. First, describe what {a} means to you. Second, notice when "
    "{b} comes up. Third, agree on one practical habit for the {c} and review it together next time.",
    "Many people face the same thing with {a}. A useful approach is to set aside time to discuss {b} "
    "without distractions, listen before answering, and keep the {c} in view as the shared goal.",
    "I hear how hard {a} has been. Try one experiment this week: when {b} starts, pause for a minute, "
    "name the feeling, and only then respond. Tell me afterwards what it did to the {c}.",
    "Worry about {a} is common, and freezing is a normal reaction. Plan what you will say about {b} "
    "before the moment comes, keep it short, and come back to the {c} once things are calm.",
    "Start with the {a}. Once that is steadier, {b} usually becomes easier to discuss, and the {c} "
    "follows. Keep notes of what works so we can build on it.",
    "Both matter, but {a} comes first because it shapes how {b} plays out. Choose one small, "
    "visible change, agree on it together, and check the {c} again in a fortnight.",
)


def _fresh(templates: tuple[str, ...], prompt: str) -> tuple[str, ...]:
    """The templates whose fixed opening the prompt does not show yet (a conversation being
    continued does not get the same sentences again), else all of them."""
    fresh = tuple(t for t in templates if t.replace("{o} ", "").split("{")[0][:20] not in prompt)
    return fresh or templates


def _utterance(words: _Words, role: str, index: int) -> str:
    rng = words.rng
    a, b, c = words.pick(3)
    k = words.base + words.turn + index
    if role == "assistant":
        templates = _fresh(_ASSISTANT, words.text)
        text = templates[k % len(templates)].format(a=a, b=b, c=c, assistant=words.assistant)
        if words.topic and index == 0 and words.turn == 0 and not words.topic_shown:  # once per conversation
            text += f" All of this is part of our work on {words.topic}."
    else:
        templates = _fresh(_USER, words.text)
        # The user's own role (named in the prompt, or "as a <role>" in a conversation being
        # continued): "What would you suggest for the counselee?" is the user speaking of itself.
        own = set(words.user.split()) | {m.lower() for m in _AS_A_ROLE.findall(words.text)}
        if c in own:
            c = next((w for w in (b, a) if w not in own), "situation")
        text = templates[k % len(templates)].format(o=rng.choice(_OPENERS), a=a, b=b, c=c, user=words.user)
    # The index makes every turn of one conversation distinct even if the draws coincide.
    return text if index == 0 else f"{text} (point {index + 1})"


def _is_enrichment(schema: dict[str, Any] | None) -> bool:
    props = (schema or {}).get("properties") or {}
    return "scenario" in props and "personas" in props


def _enrichment(words: _Words, schema: dict[str, Any]) -> str:
    """A GenLLM scene enrichment (fountain.generation.enrich): a scenario and the number of personas asked."""
    n = int(((schema.get("properties") or {}).get("personas") or {}).get("minItems", 3) or 3)
    a, b, c = words.pick(3)
    scenario = (
        f"The {words.user} meets the {words.assistant} to talk about {a} and {b}. "
        f"They meet regularly, and what is at stake is the {c}."
    )
    ages = list(range(19, 80, 3))
    words.rng.shuffle(ages)
    personas = [
        f"Person {i + 1}: {ages[i % len(ages)]} years old, cares about {words.pick(1)[0]} and "
        f"wants help with the {words.pick(1)[0]}."
        for i in range(n)
    ]
    return json.dumps({"scenario": scenario, "personas": personas}, ensure_ascii=False)


def generate_answer(request: Request) -> str:
    """The deterministic answer the fake provider gives ``request`` (no replay)."""
    rng = _rng(request)
    words = _Words(request, rng)
    if request.schema is None:
        role = "user" if request.purpose.endswith(":user") or request.purpose == "user" else "assistant"
        return _utterance(words, role, 0)
    if _is_enrichment(request.schema):
        return _enrichment(words, request.schema)
    kind, lo, hi = _turn_bounds(request.schema)
    if kind == "instruct":
        words.topic_shown = False  # an instruct derivation is a new pair, not a continuation
        return json.dumps(
            {"conversation": {"user": _utterance(words, "user", 0), "assistant": _utterance(words, "assistant", 0)}},
            ensure_ascii=False,
        )
    n = rng.randint(lo, max(lo, min(hi, 4)))
    turns = [{"user": _utterance(words, "user", i), "assistant": _utterance(words, "assistant", i)} for i in range(n)]
    return json.dumps({"conversations": turns}, ensure_ascii=False)


# --- replay --------------------------------------------------------------------------------------


def _turns_of(entry: Any) -> list[dict[str, str]] | str | None:
    """The turns of one recorded output (or its raw text), whatever the recording's format."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("text"), str) and len(entry) <= 2:
        return cast(str, entry["text"])
    if isinstance(entry.get("raw"), str) and "messages" not in entry:
        return cast(str, entry["raw"])
    if isinstance(entry.get("messages"), list):
        users = [m.get("content", "") for m in entry["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        assistants = [
            m.get("content", "") for m in entry["messages"] if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        return [{"user": u, "assistant": a} for u, a in zip(users, assistants)]
    conv = entry.get("conversations", entry.get("conversation"))
    if isinstance(conv, dict):
        return [conv]
    if isinstance(conv, list):
        if conv and all(isinstance(t, dict) and "from" in t for t in conv):  # ShareGPT
            users = [t.get("value", "") for t in conv if t.get("from") in ("human", "user")]
            assistants = [t.get("value", "") for t in conv if t.get("from") in ("gpt", "assistant")]
            return [{"user": u, "assistant": a} for u, a in zip(users, assistants)]
        return conv
    return None


def load_replay(path: str | Path) -> list[list[dict[str, str]] | str]:
    """The recorded outputs in a replay file (see the module docstring for the formats)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FountainError(
            f"cannot read the replay file: {error.strerror or error}",
            location=str(path),
            hint="give an existing file with --replay",
        ) from None
    entries: list[Any]
    try:
        data = json.loads(text)
        entries = data if isinstance(data, list) else [data]
    except ValueError:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError as error:
                raise FountainError(
                    f"the replay file is neither JSON nor JSONL ({error})",
                    location=f"{path}:{number}",
                    hint="give a Janus outputs.json or a fountain .jsonl file",
                ) from None
    outputs = []
    for number, entry in enumerate(entries, 1):
        turns = _turns_of(entry)
        if turns is None:
            raise FountainError(
                f"replay entry {number} holds no conversation",
                location=str(path),
                hint='expected {"conversations": [{"user", "assistant"}]}, '
                '{"messages": [...]} or {"text": "raw answer"} entries',
            )
        outputs.append(turns)
    if not outputs:
        raise FountainError(
            "the replay file holds no recorded output",
            location=str(path),
            hint="give a Janus outputs.json or a fountain .jsonl file",
        )
    return outputs


# --- providers -----------------------------------------------------------------------------------


class FakeProvider:
    """Deterministic ``Provider`` (see the module docstring). ``config.extra["latency_s"]`` adds a
    delay per request, for concurrency tests."""

    name = "fake"

    def __init__(self, config: ProviderConfig | None = None):
        config = config or ProviderConfig(provider="fake")
        self.config = config
        self.replay_path = config.replay
        self._replay = load_replay(config.replay) if config.replay else None
        self._replay_digest = (
            hashlib.sha256(Path(config.replay).read_bytes()).hexdigest()[:16] if config.replay else None
        )
        self.model = config.model or ("replay" if config.replay else "fake")
        self.latency_s = float((config.extra or {}).get("latency_s", 0.0) or 0.0)
        self.requests: list[Request] = []
        self._cursor = 0
        self._utterances: dict[str, int] = {"user": 0, "assistant": 0}

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"provider": self.name, "model": self.model}
        if self._replay_digest:
            identity["replay"] = self._replay_digest
        return identity

    def _answer(self, request: Request) -> str:
        if is_judgement(request.schema):
            assert request.schema is not None
            return judge_answer(request.schema, request.prompt_text(), (self.config.extra or {}).get("judge_scores"))
        if self._replay is None or _is_enrichment(request.schema):
            return generate_answer(request)
        if request.schema is None:
            return self._replay_utterance(request)
        if self._cursor == len(self._replay):
            # Said once: the copies that follow are duplicates the dedup stage will reject.
            log.warning(
                "the replay file %s has %d recorded output(s) and this run asks for more: "
                "they are answered again from the first",
                self.replay_path,
                len(self._replay),
            )
        entry = self._replay[self._cursor % len(self._replay)]
        self._cursor += 1
        if isinstance(entry, str):
            return entry
        kind, _, _ = _turn_bounds(request.schema)
        if kind == "instruct" and len(entry) == 1:
            return json.dumps({"conversation": entry[0]}, ensure_ascii=False)
        return json.dumps({"conversations": entry}, ensure_ascii=False)

    def _replay_utterance(self, request: Request) -> str:
        # Turn by turn: the recorded utterances of the requested side, in order.
        role = "user" if request.purpose.endswith(":user") else "assistant"
        assert self._replay is not None  # _answer asks for an utterance only when replaying
        said = [
            t[role]
            for entry in self._replay
            if not isinstance(entry, str)
            for t in entry
            if isinstance(t, dict) and isinstance(t.get(role), str)
        ]
        if not said:
            return generate_answer(request)
        index = self._utterances[role]
        self._utterances[role] += 1
        return said[index % len(said)]

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._completion(request, self._answer(request))

    def _completion(self, request: Request, text: str, finish_reason: str = "stop") -> Completion:
        data = None
        if request.schema is not None:
            try:
                data = json.loads(text)
            except ValueError:
                data = None
        usage = Usage(max(1, len(request.prompt_text()) // 4), max(1, len(text) // 4))
        return Completion(text=text, data=data, finish_reason=finish_reason, usage=usage, model=self.model)

    async def aclose(self) -> None:
        return None


class ScriptedProvider(FakeProvider):
    """Answers ``script`` in order (cycling): each item is a text, a ``(text, finish_reason)``
    pair, or a :class:`~fountain.errors.ProviderError` to raise. For tests of the engine."""

    def __init__(self, script: Iterable[Any], *, model: str = "scripted"):
        super().__init__(ProviderConfig(provider="fake", model=model))
        self.script = list(script)
        if not self.script:
            raise ValueError("a scripted provider needs at least one answer")

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "script": len(self.script)}

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        item = self.script[(len(self.requests) - 1) % len(self.script)]
        if isinstance(item, ProviderError):
            raise item
        if isinstance(item, tuple):
            text, finish = item
            return self._completion(request, text, finish)
        return self._completion(request, item)
