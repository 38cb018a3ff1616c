"""The generation engine: plan -> prompts -> provider -> validation -> journals -> dataset.

:func:`run` (sync) and :func:`run_async` generate a spec's dataset into an output folder:

1. decide whether the folder is a new run or a resumable one (:func:`fountain.manifest.check_resume`)
   and read the journals a previous run left (``seeds.jsonl``, ``derivations.jsonl``,
   ``rejects.jsonl``): finished tasks are skipped;
2. run the seed tasks (:mod:`fountain.plan`) with ``concurrency`` workers; every accepted seed
   immediately plans its derivation tasks;
3. each task asks the model (through the :class:`~fountain.dispatch.Dispatcher`: cache, rate
   limits, provider retries, cost) in one of two modes, ``json`` (one request for the whole
   conversation, validated against the conversation schema) or ``turns`` (one request per
   utterance, the model playing each role in turn, :mod:`fountain.roleplay`); an answer that
   fails validation is asked again up to ``max_retries`` times, then written to ``rejects.jsonl``;
4. at the end (or when the run stops) the journals are rewritten in plan order, the dataset is
   exported (:mod:`fountain.export`) and ``manifest.json`` records what happened.

Memory does not grow with the run: accepted samples live in the journals, and the engine keeps an
index of where each one is (plus what planning needs); a derivation's parent is read back from its
journal when its task runs, and the final rewrite and export stream line by line.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import operator
import os
import random
import time
from array import array
from collections import OrderedDict
from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from fountain import aio
from fountain.errors import FountainError, OutputError, ProviderError
from fountain.journal import AtomicFile, Journal, RecordReader, dumps_record, scan_journal
from fountain.plan import DERIVATION, SEED, Task, derivation_tasks, seed_tasks
from fountain.providers.base import Message, Provider, Request, Sampling
from fountain.types import Provenance, Sample, Turn, Usage
from fountain.validate import (Accepted, Rejected, Rules, check_turns, check_utterance, clean_utterance,
                               request_schema, trim_to_sentence, validate_completion, words)

MODES = ("auto", "json", "turns")
SEEDS_FILE, DERIVATIONS_FILE, REJECTS_FILE = "seeds.jsonl", "derivations.jsonl", "rejects.jsonl"
JOURNALS = (SEEDS_FILE, DERIVATIONS_FILE, REJECTS_FILE)  # positions in this tuple name a journal
_SEEDS, _DERIVATIONS, _REJECTS = range(3)
RAW_MAX_CHARS = 20_000  # raw answers kept in rejects.jsonl are cut here
PROVIDER_ERROR = "provider_error"  # reject reason; such tasks are tried again on resume
DEFAULT_CONCURRENCY = {"local": 1, "fake": 8}
DEFAULT_API_CONCURRENCY = 16
REASK = "Your previous answer was invalid: {detail}. Answer again with only the JSON object."


@dataclass
class RunOptions:
    """Everything a run can be told besides the spec. ``None`` means: the spec's value, else the
    default. The CLI's ``run`` command fills one of these; library users build it directly."""

    output: str | Path | None = None  # default: <spec folder>/<output.folder> ("output")
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    replay: str | Path | None = None  # fake provider: replay recorded outputs
    format: str | None = None  # messages | sharegpt | janus
    concurrency: int | None = None
    seed: int | None = None  # makes fake/local runs reproducible
    seeds_per_direction: int | None = None
    derivations_per_direction: int | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    max_prefix_turns: int | None = None
    max_retries: int | None = None
    target: int | None = None
    mode: str | None = None  # auto | json | turns
    quiet: bool = False
    progress: bool | None = None  # None: shown on a terminal unless quiet
    fsync: bool = True  # journal lines reach the disk by group commit (see fountain.journal)
    # --- production runs (dispatch, cache, manifest) ---
    resume: str = "if-compatible"  # if-compatible | always | never
    cache: str | Path | None = None  # default: <output>/cache.sqlite
    no_cache: bool = False
    rpm: float | None = None
    tpm: float | None = None
    budget_usd: float | None = None
    prices: str | Path | None = None
    max_error_rate: float = 0.5
    # --- frameworks and raters (fountain.frameworks; None: the spec's value, else the default) ---
    framework: str | None = None  # Gen | GenLLM | Filter | Feedback
    rater: str | None = None  # PE | RF
    real_data: str | Path | None = None
    epsilon: float | None = None
    delta: float | None = None
    sigma: float | None = None  # PE noise per iteration (default: from epsilon, delta, iterations)
    iterations: int | None = None
    embedder: str | None = None
    k: int | None = None
    personas: int | None = None  # GenLLM: personas the model generates

    def record(self) -> dict[str, Any]:
        """The options as written into the manifest's run history (paths as text, no secrets)."""
        out = {}
        for key, value in asdict(self).items():
            if value is None or key in ("quiet", "progress"):
                continue
            out[key] = str(value) if isinstance(value, Path) else value
        return out


@dataclass
class RunResult:
    """What a run did. ``counts`` covers the whole output folder (earlier sessions included)."""

    output_dir: Path
    dataset_path: Path | None
    dataset_records: int
    samples: Sequence[Sample]  # the dataset's samples in order (ResultSamples: read on demand)
    counts: dict[str, Any]
    retries: int = 0  # validation re-asks in this session
    stats: Any = None  # fountain.dispatch.RunStats of this session
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    stopped: FountainError | None = None
    manifest_path: Path | None = None
    resumed: bool = False
    mode: str = "json"


# --- resolution helpers ------------------------------------------------------------------------


def resolve_mode(spec: Any, provider_name: str, requested: str | None = None) -> str:
    """``json`` or ``turns``: the requested mode, else the spec's; ``auto`` picks ``turns`` for the
    local model and ``json`` for API providers, and always ``json`` for legacy (Janus) prompts whose
    output format asks for JSON (they are used as written)."""
    mode = (requested or getattr(spec.generation, "mode", None) or "auto").lower()
    if mode not in MODES:
        raise FountainError(f"unknown generation mode {mode!r}", location="--mode",
                            hint="one of auto, json, turns")
    if mode != "auto":
        return mode
    if getattr(spec, "template_style", "") == "legacy" and "json" in (spec.output_format or "").lower():
        return "json"
    return "turns" if provider_name == "local" else "json"


def effective_spec(spec: Any, options: RunOptions) -> Any:
    """``spec`` with the run's overrides of the generation settings applied."""
    gen = spec.generation
    changes: dict[str, Any] = {}
    for name in ("seeds_per_direction", "derivations_per_direction", "max_prefix_turns",
                 "max_retries", "target", "mode"):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
    if options.max_turns is not None:
        changes["max_turns"] = options.max_turns
        if options.min_turns is None and gen.min_turns > options.max_turns:
            changes["min_turns"] = options.max_turns
    if options.min_turns is not None:
        changes["min_turns"] = options.min_turns
    lo = changes.get("min_turns", gen.min_turns)
    hi = changes.get("max_turns", gen.max_turns)
    if lo > hi:
        raise FountainError(f"min_turns ({lo}) is larger than max_turns ({hi})",
                            location="--max-turns", hint="give a max_turns of at least min_turns")
    return replace(spec, generation=replace(gen, **changes)) if changes else spec


def output_folder(spec: Any, options: RunOptions) -> Path:
    if options.output is not None:
        return Path(options.output)
    folder = getattr(getattr(spec, "output", None), "folder", None) or "output"
    path = Path(folder)
    return path if path.is_absolute() else Path(spec.folder) / path


def _short_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _messages_hash(messages: Sequence[Message]) -> str:
    return _short_hash([[m.role, m.content] for m in messages])


def _fingerprint(spec: Any) -> str:
    try:
        return str(spec.fingerprint())
    except NotImplementedError:
        return ""


def _canonical_direction(name: str):
    from fountain.directions import resolve_direction

    return resolve_direction(name)


# --- requests (shared with `fountain render`) ----------------------------------------------------


def json_messages(spec: Any, task_kind: str, direction: str, *, persona: str | None = None,
                  conversation: Sequence[Turn] = (), scenario: str = "") -> tuple[Message, ...]:
    """The messages of a json-mode request: the spec's system prompt (if any) and the prompt."""
    from fountain.prompts import render_derivation_prompt, render_seed_prompt, render_system_prompt

    resolved = _canonical_direction(direction)
    if task_kind == SEED:
        prompt = render_seed_prompt(spec, resolved, persona=persona, scenario=scenario)
    else:
        prompt = render_derivation_prompt(spec, resolved, conversation, persona=persona, scenario=scenario)
    system = render_system_prompt(spec, resolved, persona=persona, scenario=scenario)
    return ((Message("system", system),) if system else ()) + (Message("user", prompt),)


def spec_sampling(spec: Any, max_tokens_cap: int | None = None) -> Sampling:
    model = spec.model
    max_tokens = model.max_tokens
    if max_tokens_cap is not None:
        max_tokens = min(max_tokens, max_tokens_cap) if max_tokens else max_tokens_cap
    return Sampling(temperature=model.temperature, top_p=model.top_p, max_tokens=max_tokens)


# --- where the samples are ----------------------------------------------------------------------


class _Entry(NamedTuple):
    """Where one accepted sample is, and what planning needs without reading it."""

    source: int  # _SEEDS or _DERIVATIONS: the journal holding its line
    offset: int
    length: int
    kind: str
    turns: int
    persona: str | None
    canonical: bool  # the line is exactly dumps_record(sample.to_record()) + newline


class SampleIndex(Mapping):
    """The accepted samples of an output folder by id, read back from their journals on demand.

    Holds one small :class:`_Entry` per sample instead of the sample, plus the most recently added
    or read ones (a seed is read again by each of its derivation tasks).
    """

    RECENT = 2048

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._recent: OrderedDict[str, Sample] = OrderedDict()
        self.reader: RecordReader | None = None

    def add(self, sample: Sample, source: int, offset: int, length: int, *, canonical: bool = True,
            remember: bool = True) -> None:
        self._entries[sample.id] = _Entry(source, offset, length, sample.provenance.kind, len(sample.turns),
                                          sample.provenance.persona, canonical)
        if remember:
            self._remember(sample)

    def _remember(self, sample: Sample) -> None:
        recent = self._recent
        recent[sample.id] = sample
        recent.move_to_end(sample.id)
        if len(recent) > self.RECENT:
            recent.popitem(last=False)

    def entry(self, sample_id: str) -> _Entry:
        return self._entries[sample_id]

    def entries(self) -> Iterator[tuple[str, _Entry]]:
        return iter(self._entries.items())

    def __getitem__(self, sample_id: str) -> Sample:
        sample = self._recent.get(sample_id)
        if sample is not None:
            self._recent.move_to_end(sample_id)
            return sample
        entry = self._entries[sample_id]
        if self.reader is None:
            raise RuntimeError("the journals are not open")
        record = self.reader.record(entry.source, entry.offset, entry.length)
        sample = Sample.from_record(record)
        if sample.id != sample_id:
            raise OutputError(f"{JOURNALS[entry.source]} changed under a running fountain: byte "
                              f"{entry.offset} holds {sample.id!r}, not {sample_id!r}",
                              location=str(self.reader.paths[entry.source]),
                              hint="do not edit the journals while a run writes them; run the same "
                                   "command again to resume")
        self._remember(sample)
        return sample

    def line(self, sample_id: str) -> bytes:
        """The sample's canonical journal line (re-serialised when the journal's was not)."""
        entry = self._entries[sample_id]
        if entry.canonical:
            assert self.reader is not None
            return self.reader.line(entry.source, entry.offset, entry.length)
        return (dumps_record(self[sample_id].to_record()) + "\n").encode("utf-8")

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class ResultSamples(SequenceABC):
    """:attr:`RunResult.samples` of an engine run: the dataset's samples in order, read from the
    journals the run rewrote (seeds, then derivations) when asked for, so a large run's result
    does not hold every conversation in memory. Once another run rewrites those journals, reading
    raises :class:`~fountain.errors.OutputError` (read the journals again instead)."""

    def __init__(self, parts: Sequence[tuple[Path, array]]):
        # Per file: its path, the offsets of its lines with the file's size appended, and the
        # file's identity (a rewrite replaces the file: another inode, size or time).
        self._parts = [(path, offsets, self._identity(path)) for path, offsets in parts]
        self._len = sum(len(offsets) - 1 for _, offsets in parts)

    @staticmethod
    def _identity(path: Path) -> tuple[int, ...]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return ()
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _check(self, path: Path, identity: tuple[int, ...]) -> None:
        if self._identity(path) != identity:
            raise OutputError(f"{path.name} was rewritten after this run ended (another run in the folder?)",
                              location=str(path),
                              hint="read the output folder again (fountain.journal.read_journal) instead "
                                   "of an old RunResult's samples")

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        index = operator.index(index)
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("sample index out of range")
        for path, offsets, identity in self._parts:
            count = len(offsets) - 1
            if index < count:
                self._check(path, identity)
                start, end = offsets[index], offsets[index + 1]
                with RecordReader([path]) as reader:
                    return Sample.from_record(reader.record(0, start, end - start))
            index -= count
        raise IndexError("sample index out of range")

    def __iter__(self) -> Iterator[Sample]:
        for path, offsets, identity in self._parts:
            if len(offsets) <= 1:
                continue
            self._check(path, identity)
            with open(path, "rb") as handle:
                for line in handle:
                    yield Sample.from_record(json.loads(line))

    def __repr__(self) -> str:
        return f"<ResultSamples: {self._len} samples in {', '.join(p.name for p, _, _ in self._parts)}>"


# --- the engine --------------------------------------------------------------------------------


@dataclass
class _Outcome:
    task: Task
    sample: Sample | None = None
    reject: dict[str, Any] | None = None
    completion_tokens: int = 0


class _Attempts:
    """Usage and last raw answer accumulated over a task's requests."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.raw = ""
        self.model = ""
        self.reasons: list[str] = []
        self.attempts = 0
        self.last_attempt = 0


class Engine:
    """One run of one spec into one output folder. Use :func:`run` / :func:`run_async`."""

    def __init__(self, spec: Any, options: RunOptions, provider: Provider, *, source_spec: Any = None):
        self.spec = spec
        self.source_spec = source_spec if source_spec is not None else spec
        self.options = options
        self.provider = provider
        self.gen = spec.generation
        self.type = self.gen.type
        self.instruct = self.type == "instruct"
        self.rules = Rules.from_spec(spec)
        self.schema = request_schema(self.rules)
        self.mode = resolve_mode(spec, provider.name, options.mode)
        self.reask = provider.name != "local"
        self.seed = options.seed
        self.max_retries = max(0, self.gen.max_retries)
        self.output_dir = output_folder(spec, options)
        self.fingerprint = _fingerprint(self.source_spec)
        self.sampling = spec_sampling(spec)
        self.roleplay = None
        if self.mode == "turns":
            from fountain.roleplay import Roleplay

            self.roleplay = Roleplay.from_spec(spec)
        self.samples = SampleIndex()  # id -> Sample, read back from the journals on demand
        self.rejects: dict[str, tuple[str, int, int]] = {}  # id -> (reason, offset, length) in rejects.jsonl
        self.order: dict[str, tuple] = {}
        self.planned_derivations = 0
        self.retries = 0
        self.warnings: list[str] = []
        self.stop_error: FountainError | None = None
        self.crash: BaseException | None = None
        self._directions: dict[str, Any] = {}
        self._seen_parents: set[str] = set()
        # Seed prompts depend on (direction, persona, scenario) only: rendered once each.
        self._seed_messages: dict[tuple, tuple[tuple[Message, ...], str]] = {}
        # (Unless a template draws at random, e.g. Jinja's ``random`` filter.)
        self._pure_prompts = "random" not in "".join(str(getattr(spec, name, "") or "")
                                                     for name in ("initial_prompt", "system_prompt"))
        # Hooks of fountain.frameworks: the GenLLM scenario given to every prompt, and the
        # iteration (Filter round, Feedback iteration) written into each sample's provenance.
        self.scenario = ""
        self.iteration = 0

    # --- helpers ---------------------------------------------------------------------------------

    def _direction(self, name: str):
        direction = self._directions.get(name)
        if direction is None:
            direction = self._directions[name] = _canonical_direction(name)
        return direction

    def _attempt_seed(self, attempt: int) -> int | None:
        # A new sampling seed for each re-ask, so a retry is a new draw (and a new cache key).
        if attempt == 0:
            return self.seed
        return (self.seed if self.seed is not None else 0) + attempt * 1_000_003

    def _accepted_count(self) -> int:
        return len(self.samples)

    # --- one task --------------------------------------------------------------------------------

    async def _execute(self, task: Task) -> _Outcome:
        parent = self.samples.get(task.parent_id) if task.parent_id else None
        if task.kind == DERIVATION and parent is None:
            raise RuntimeError(f"derivation {task.id} has no parent {task.parent_id}")
        if self.mode == "turns":
            return await self._turns_task(task, parent)
        return await self._json_task(task, parent)

    def _prefix(self, task: Task, parent: Sample | None) -> tuple[Turn, ...]:
        if parent is None or self.instruct:
            return ()
        return tuple(parent.turns[:task.prefix_turns])

    def _json_messages(self, task: Task, shown: Sequence[Turn]) -> tuple[tuple[Message, ...], str]:
        """A json-mode request's messages and their hash. A seed's are the same for every seed of
        its direction and persona, so they are rendered once (the same tuple also lets the cache
        key reuse its serialised messages)."""
        key = (task.direction, task.persona, self.scenario)
        cacheable = task.kind == SEED and not shown and self._pure_prompts
        if cacheable and key in self._seed_messages:
            return self._seed_messages[key]
        messages = json_messages(self.spec, task.kind, task.direction, persona=task.persona,
                                 conversation=shown, scenario=self.scenario)
        made = (messages, _messages_hash(messages))
        if cacheable:
            self._seed_messages[key] = made
        return made

    async def _json_task(self, task: Task, parent: Sample | None) -> _Outcome:
        prefix = self._prefix(task, parent)
        shown = parent.turns if (parent is not None and self.instruct) else prefix
        messages, prompt_hash = self._json_messages(task, shown)
        state = _Attempts()
        rejected: Rejected | None = None
        parent_turns = parent.turns if parent is not None else ()
        for attempt in range(self.max_retries + 1):
            sent = messages
            if attempt:
                self._on_retry()
                if self.reask and rejected is not None:
                    sent = messages + (Message("assistant", state.raw[:4000] or "(empty answer)"),
                                       Message("user", REASK.format(detail=rejected.detail)))
            request = Request(messages=sent, schema=self.schema, sampling=self.sampling,
                              sample_index=task.index, seed=self._attempt_seed(attempt), purpose=task.kind)
            completion = await self.dispatcher.complete(request)
            state.attempts += 1
            state.usage = state.usage + completion.usage
            state.raw = completion.text if isinstance(completion.text, str) else str(completion.text)
            state.model = completion.model or state.model
            payload = completion.data if completion.data is not None else state.raw
            result = self._validate(payload, task, prefix, parent_turns, completion.finish_reason)
            if isinstance(result, Accepted):
                turns = prefix + result.turns
                return self._accept(task, turns, state, prompt_hash, attempt)
            rejected = result
            state.reasons.append(result.reason)
        return self._reject(task, rejected, state, prompt_hash)

    def _validate(self, payload: Any, task: Task, prefix: Sequence[Turn], parent: Sequence[Turn],
                  finish_reason: str | None) -> Accepted | Rejected:
        try:
            return validate_completion(payload, spec_or_rules=self.rules, kind=task.kind, prefix=prefix,
                                       parent=parent, finish_reason=finish_reason)
        except Exception as error:  # noqa: BLE001 - a model's answer must never crash the run
            return Rejected("schema", f"the answer could not be validated: {type(error).__name__}: {error}")

    async def _turns_task(self, task: Task, parent: Sample | None) -> _Outcome:
        assert self.roleplay is not None
        roleplay = self.roleplay
        prefix = self._prefix(task, parent)
        example = parent.turns if (parent is not None and self.instruct) else ()
        instructions = self._direction(task.direction).instructions
        lo, hi = self.rules.bounds
        rng = random.Random(int(_short_hash([task.id, self.seed]), 16))
        n_turns = rng.randint(lo, hi)
        history = list(prefix)
        continuation: list[Turn] = []
        state = _Attempts()
        prompt_hash = _messages_hash(roleplay.user_messages(instructions, task.persona, history, example))
        failure: Rejected | None = None
        for _ in range(n_turns):
            user = await self._utterance(task, "user", state, history=history,
                                         messages=lambda h=tuple(history): roleplay.user_messages(
                                             instructions, task.persona, h, example))
            if isinstance(user, Rejected):
                failure = user
                break
            answer = await self._utterance(task, "assistant", state, history=history, user_text=user,
                                           messages=lambda h=tuple(history), u=user: roleplay.assistant_messages(
                                               instructions, h, u))
            if isinstance(answer, Rejected):
                failure = answer
                break
            turn = Turn(user, answer)
            continuation.append(turn)
            history.append(turn)
        if failure is not None and len(continuation) < lo:
            return self._reject(task, failure, state, prompt_hash)
        # A conversation whose later utterance failed every retry ends where it was still good.
        parent_turns = parent.turns if parent is not None else ()
        problem = check_turns(continuation, self.rules, kind=task.kind, prefix=prefix, parent=parent_turns)
        if problem is not None:
            return self._reject(task, problem, state, prompt_hash)
        return self._accept(task, tuple(prefix) + tuple(continuation), state, prompt_hash,
                            state.last_attempt)

    async def _utterance(self, task: Task, role: str, state: _Attempts, *, history: Sequence[Turn],
                         messages, user_text: str | None = None) -> str | Rejected:
        """One utterance of ``role``, asked again up to max_retries times until it passes."""
        assert self.roleplay is not None
        sampling = spec_sampling(self.spec, self.roleplay.max_tokens(role))
        problem: Rejected | None = None
        earlier = {" ".join(words(m)) for t in history for m in (t.user, t.assistant)}
        if user_text is not None:
            earlier.add(" ".join(words(user_text)))
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._on_retry()
            request = Request(messages=messages(), schema=None, sampling=sampling,
                              sample_index=task.index, seed=self._attempt_seed(attempt),
                              purpose=f"{task.kind}:{role}")
            completion = await self.dispatcher.complete(request)
            state.attempts += 1
            state.last_attempt = max(state.last_attempt, attempt)
            state.usage = state.usage + completion.usage
            raw = completion.text if isinstance(completion.text, str) else ""
            state.raw = raw
            state.model = completion.model or state.model
            text = raw.strip()
            if role == "user" and not self.instruct:
                # A user line is one paragraph; more is the model rambling (a paragraph that is
                # only a role label, "COUNSELEE:", does not count).
                paragraphs = [p for p in text.split("\n\n") if p.strip()]
                text = next((p for p in paragraphs if clean_utterance(p, self.rules.roles)), "")
            if completion.finish_reason == "length":
                text = trim_to_sentence(text)
            text = clean_utterance(text, self.rules.roles)
            problem = check_utterance(text, role, self.rules)
            if problem is None and " ".join(words(text)) in earlier:
                problem = Rejected("elimination:repetition",
                                   f"the {role} repeats an earlier message: {text[:60]!r}")
            if problem is None:
                return text
            state.reasons.append(problem.reason)
        assert problem is not None
        return problem

    # --- results ---------------------------------------------------------------------------------

    def _provenance(self, task: Task, state: _Attempts, prompt_hash: str, attempt: int) -> Provenance:
        return Provenance(kind=task.kind, direction=task.direction, category=self.spec.category,
                          conversation_type=self.type, parent_id=task.parent_id,
                          prefix_turns=task.prefix_turns, provider=self.provider.name,
                          model=state.model or str(getattr(self.provider, "model", "") or ""),
                          prompt_hash=prompt_hash, usage=state.usage,
                          spec_fingerprint=self.fingerprint, persona=task.persona, attempt=attempt,
                          iteration=self.iteration)

    def _accept(self, task: Task, turns: Sequence[Turn], state: _Attempts, prompt_hash: str,
                attempt: int) -> _Outcome:
        sample = Sample(task.id, tuple(turns), self._provenance(task, state, prompt_hash, attempt))
        return _Outcome(task, sample=sample, completion_tokens=state.usage.completion_tokens)

    def _reject(self, task: Task, rejected: Rejected | None, state: _Attempts, prompt_hash: str,
                *, reason: str | None = None, detail: str | None = None) -> _Outcome:
        prov = self._provenance(task, state, prompt_hash, max(0, state.attempts - 1))
        meta = asdict(prov)
        meta["type"] = meta.pop("conversation_type")
        for key in ("kind", "direction"):
            meta.pop(key)
        meta["reasons"] = list(state.reasons)
        record = {"id": task.id, "kind": task.kind, "direction": task.direction,
                  "reason": reason or (rejected.reason if rejected else "schema"),
                  "detail": detail or (rejected.detail if rejected else ""),
                  "raw": state.raw[:RAW_MAX_CHARS], "attempts": state.attempts, "metadata": meta}
        return _Outcome(task, reject=record, completion_tokens=state.usage.completion_tokens)

    def _on_retry(self) -> None:
        self.retries += 1
        self.progress.on_retry()

    # --- scheduling ------------------------------------------------------------------------------

    # Hooks for fountain.frameworks (rounds, PE variations, GenLLM enrichment); the defaults are
    # a plain run.
    async def prepare(self) -> None:
        """Called once the manifest and dispatcher exist, before anything is planned."""

    def plan_seeds(self) -> list[Task]:
        """The seed tasks of this run, in plan order."""
        return seed_tasks(self.spec.seed_directions, self.gen.seeds_per_direction, self.spec.personas)

    def plan_extra(self) -> list[Task]:
        """Tasks besides the seeds and their derivations (their parents must be accepted samples
        of the output folder); sorted after everything else in the journals."""
        return []

    def _plan_derivations(self, parent_id: str, n_turns: int, persona: str | None) -> list[Task]:
        if parent_id in self._seen_parents or self.gen.derivations_per_direction <= 0:
            return []
        self._seen_parents.add(parent_id)
        parent_order = self.order.get(parent_id, (1, 10**9))[1:]
        tasks = derivation_tasks(parent_id, n_turns, tuple(parent_order),
                                 self.spec.derivational_directions, self.gen.derivations_per_direction,
                                 persona=persona,
                                 max_prefix_turns=self.gen.max_prefix_turns, conversation_type=self.type)
        for task in tasks:
            self.order.setdefault(task.id, (2, *task.order))
        self.planned_derivations += len(tasks)
        return tasks

    def _done(self, task_id: str) -> bool:
        if task_id in self.samples:
            return True
        reject = self.rejects.get(task_id)
        return reject is not None and reject[0] != PROVIDER_ERROR

    def _target_reached(self) -> bool:
        target = self.gen.target
        return bool(target) and self._accepted_count() >= target

    def _record(self, outcome: _Outcome) -> list[Task]:
        """Journal an outcome; returns the tasks it makes possible (a seed's derivations)."""
        task = outcome.task
        if outcome.sample is not None:
            sample = outcome.sample
            if task.kind == SEED:
                offset, length = self.seeds_journal.append(sample.to_record())
                self.samples.add(sample, _SEEDS, offset, length)
            else:
                offset, length = self.derivations_journal.append(sample.to_record())
                self.samples.add(sample, _DERIVATIONS, offset, length)
            self.rejects.pop(sample.id, None)  # an earlier provider_error is now superseded
            self.progress.on_accepted(task.kind, outcome.completion_tokens)
            if task.kind == SEED:
                return self._plan_derivations(sample.id, len(sample.turns), sample.provenance.persona)
            return []
        assert outcome.reject is not None
        offset, length = self.rejects_journal.append(outcome.reject)
        self.rejects[task.id] = (outcome.reject["reason"], offset, length)
        self.progress.on_rejected(outcome.reject["reason"], outcome.completion_tokens)
        return []

    async def _worker(self, queue: "asyncio.Queue[Task]") -> None:
        while True:
            task = await queue.get()
            try:
                if self.stop_error is not None or self.crash is not None or self._done(task.id) \
                        or self._target_reached():
                    continue
                try:
                    outcome = await self._execute(task)
                except ProviderError as error:
                    if getattr(self.dispatcher, "stopped", None) is error or _is_fatal(error):
                        self.stop_error = error
                        continue
                    # One request failed for good (after the dispatcher's retries): reject this
                    # task with the reason, keep going; a resume tries it again.
                    state = _Attempts()
                    outcome = self._reject(task, None, state, "", reason=PROVIDER_ERROR,
                                           detail=f"{type(error).__name__}: {error.message}")
                except FountainError as error:
                    self.stop_error = error
                    continue
                for follow in self._record(outcome):
                    if not self._done(follow.id):
                        queue.put_nowait(follow)
                        self.progress.add_total(1)
            except asyncio.CancelledError:
                raise
            except FountainError as error:  # e.g. a journal that cannot be written
                self.stop_error = error
            except Exception as error:  # noqa: BLE001 - a bug: stop cleanly, save, then re-raise
                self.crash = error
            finally:
                queue.task_done()

    # --- the run ---------------------------------------------------------------------------------

    def _load_previous(self) -> None:
        """Index the journals a previous session left (streamed: one record in memory at a time)."""
        for source, name in ((_SEEDS, SEEDS_FILE), (_DERIVATIONS, DERIVATIONS_FILE)):
            scan = scan_journal(self.output_dir / name)
            for number, (offset, raw, record) in enumerate(scan, 1):
                try:
                    sample = Sample.from_record(record)
                except (KeyError, TypeError, ValueError) as error:
                    raise OutputError(f"{name} record {number} is not a sample ({error})",
                                      location=f"{self.output_dir / name}:{number}",
                                      hint="the file was edited or damaged; fix or remove that "
                                           "record, or write to another folder with --output") from None
                if sample.id in self.samples:
                    continue  # the first record of an id wins
                canonical = raw == (dumps_record(sample.to_record()) + "\n").encode("utf-8")
                self.samples.add(sample, source, offset, len(raw), canonical=canonical, remember=False)
            if scan.warning:
                self.warnings.append(scan.warning)
        scan = scan_journal(self.output_dir / REJECTS_FILE)
        for offset, raw, record in scan:
            if isinstance(record.get("id"), str):
                self.rejects[record["id"]] = (record.get("reason"), offset, len(raw))
        if scan.warning:
            self.warnings.append(scan.warning)

    def _make_dispatcher(self, stats: Any):
        from fountain.dispatch import Dispatcher

        options = self.options
        cache = None
        if not options.no_cache:
            from fountain.cache import ResponseCache

            path = Path(options.cache) if options.cache else self.output_dir / "cache.sqlite"
            cache = ResponseCache(path)
        try:
            prices = None
            if options.prices is not None:
                from fountain.cost import PriceTable

                prices = PriceTable.load(options.prices)
            concurrency = self.concurrency()
            return Dispatcher(self.provider, cache=cache, concurrency=concurrency,
                              rpm=options.rpm or self.spec.model.rpm, tpm=options.tpm or self.spec.model.tpm,
                              budget_usd=options.budget_usd, prices=prices, stats=stats,
                              max_error_rate=options.max_error_rate)
        except BaseException:
            if cache is not None:
                cache.close()
            raise

    def concurrency(self) -> int:
        value = self.options.concurrency or self.spec.model.concurrency
        if value is None:
            value = DEFAULT_CONCURRENCY.get(self.provider.name, DEFAULT_API_CONCURRENCY)
        return max(1, int(value))

    async def run(self) -> RunResult:
        """Generate into the output folder, holding its lock (one run per folder at a time)."""
        from fountain.manifest import output_lock

        with output_lock(self.output_dir):
            return await self._run()

    async def _run(self) -> RunResult:
        from fountain.cache import public_identity
        from fountain.dispatch import RunStats
        from fountain.manifest import Manifest, check_resume
        from fountain.progress import Progress

        started = time.monotonic()
        identity = public_identity(self.provider.identity())
        decision = check_resume(self.output_dir, self.source_spec, self.options.resume, provider=identity)
        self.warnings.extend(decision.notes)
        if decision.resuming and decision.manifest is not None:
            manifest = decision.manifest
            stats = RunStats.resumed(Usage.from_dict(manifest.usage), manifest.cost_usd)
        else:
            manifest = Manifest.for_spec(self.source_spec, provider=identity, output_dir=self.output_dir)
            stats = RunStats()
        # The cache, the price table and the journals are checked before the manifest is
        # touched: a bad --cache/--prices or a damaged journal leaves the folder as it was.
        self.stats = stats
        self.dispatcher = self._make_dispatcher(stats)
        try:
            self._load_previous()
            manifest.begin("resume" if decision.resuming else "start", provider=identity,
                           options={**self.options.record(), "mode": self.mode})
            manifest.write(self.output_dir)  # before any journal: a folder with journals has a manifest
        except BaseException:
            if self.dispatcher.cache is not None:
                self.dispatcher.cache.close()
            raise
        self.manifest = manifest
        self.progress = Progress(enabled=self.options.progress, quiet=self.options.quiet, stats=stats)
        await self.prepare()

        seeds = self.plan_seeds()
        for task in seeds:
            self.order[task.id] = (1, *task.order)
        queue: asyncio.Queue[Task] = asyncio.Queue()
        pending = [t for t in seeds if not self._done(t.id)]
        accepted_seeds = sorted((sample_id for sample_id, entry in self.samples.entries()
                                 if entry.kind == SEED), key=self._sort_key)
        for sample_id in accepted_seeds:
            entry = self.samples.entry(sample_id)
            pending += [t for t in self._plan_derivations(sample_id, entry.turns, entry.persona)
                        if not self._done(t.id)]
        for task in self.plan_extra():
            self.order.setdefault(task.id, (4, *task.order))
            if not self._done(task.id):
                pending.append(task)
        self.seeds_requested = len(seeds)
        for task in pending:
            queue.put_nowait(task)
        # The plan goes into the manifest now, so `fountain status` can tell what a killed run has
        # left (derivations are planned as seeds are accepted: this is the plan known so far).
        manifest.counts.update({"seeds_requested": self.seeds_requested,
                                "derivations_planned": self.planned_derivations})
        manifest.write(self.output_dir)

        self.seeds_journal = Journal(self.output_dir / SEEDS_FILE, fsync=self.options.fsync)
        self.derivations_journal = Journal(self.output_dir / DERIVATIONS_FILE, fsync=self.options.fsync)
        self.rejects_journal = Journal(self.output_dir / REJECTS_FILE, fsync=self.options.fsync)
        # Opened once the three files exist, before anything can replace them (see RecordReader).
        self.samples.reader = RecordReader([self.output_dir / name for name in JOURNALS])
        done_before = len(self.samples) + sum(1 for r in self.rejects.values() if r[0] != PROVIDER_ERROR)
        self.progress.start(done_before + len(pending), done=done_before)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.concurrency())]
        interrupted = False
        try:
            await queue.join()
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.progress.close()
            for journal in (self.seeds_journal, self.derivations_journal, self.rejects_journal):
                journal.close()
            cache = getattr(self.dispatcher, "cache", None)
            if not interrupted and self.stop_error is None and self.crash is None:
                self.stop_error = self._nothing_accepted_error()
            try:
                result = self._finish(started, interrupted)
            finally:
                self.samples.reader.close()
                if cache is not None:
                    cache.close()
        if self.crash is not None:
            raise self.crash
        if self.stop_error is not None:
            error = self.stop_error
            more = (f"everything generated so far is saved in {self.output_dir}; fix the problem and "
                    "run the same command again to continue where it stopped")
            if "run the same command again" not in (error.hint or ""):
                error.hint = f"{error.hint}; {more}" if error.hint else more
            raise error
        return result

    def _sort_key(self, sample_id: str) -> tuple:
        return (*self.order.get(sample_id, (3,)), sample_id)

    def _nothing_accepted_error(self) -> FountainError | None:
        """A run that accepted no conversation because its requests failed is an error, not a
        completed run: it names the last provider error (the run is marked stopped; a rerun
        tries the failed tasks again)."""
        failed = sum(1 for reason, _, _ in self.rejects.values() if reason == PROVIDER_ERROR)
        if len(self.samples) or not failed:
            return None
        last = getattr(self.dispatcher, "last_error", None)
        where = getattr(self.provider, "base_url", None)
        return ProviderError(
            f"no conversation was accepted: {failed} request(s) to {self.provider.name}"
            f"{f' at {where}' if where else ''} failed"
            + (f"; last error: {last.message}" if last is not None else ""),
            hint="check --base-url (or model.base_url), the model name and that the server is up; "
                 "rejects.jsonl lists each failure; run the same command again to retry them")

    def _finish(self, started: float, interrupted: bool) -> RunResult:
        """Rewrite the journals in plan order, export the dataset, write the manifest.

        Streamed: the new journals are written next to the old ones, each line copied from where
        the index says it is; then the old files are closed and replaced, and the dataset is
        exported from the new journals."""
        from fountain.export import export_lines

        samples = self.samples
        reader = samples.reader
        assert reader is not None
        ordered = sorted(samples, key=self._sort_key)
        seeds = [i for i in ordered if samples.entry(i).kind == SEED]
        derivations = [i for i in ordered if samples.entry(i).kind != SEED]
        del ordered
        rejects = sorted((i for i in self.rejects if i not in samples), key=self._sort_key)
        with AtomicFile(self.output_dir / SEEDS_FILE) as new_seeds, \
                AtomicFile(self.output_dir / DERIVATIONS_FILE) as new_derivations, \
                AtomicFile(self.output_dir / REJECTS_FILE) as new_rejects:
            parts = []
            for out, ids in ((new_seeds, seeds), (new_derivations, derivations)):
                offsets = array("q", (out.write(samples.line(i)) for i in ids))
                offsets.append(out.size)
                parts.append((out.path, offsets))
            for sample_id in rejects:
                new_rejects.write(dumps_record(reader.record(_REJECTS, *self.rejects[sample_id][1:])) + "\n")
            reader.close()  # the old files are replaced now (and Windows cannot replace open files)
            for out in (new_seeds, new_derivations, new_rejects):
                out.commit()
        fmt = self.options.format or getattr(self.spec.output, "format", None) or "messages"
        system = getattr(self.spec.output, "system_message", None)
        dataset, records = export_lines(self._journal_lines(parts), self.output_dir, fmt,
                                        system_message=system)

        rejected: dict[str, int] = {}
        for sample_id in rejects:
            reason = str(self.rejects[sample_id][0])
            rejected[reason] = rejected.get(reason, 0) + 1
        counts = {"seeds_requested": self.seeds_requested,
                  "derivations_planned": self.planned_derivations,
                  "accepted": {"seed": len(seeds), "derivation": len(derivations)},
                  "rejected": dict(sorted(rejected.items())),
                  "dataset_records": records}
        self.manifest.counts.update(counts)
        self._drop_stale_dataset(dataset, fmt)
        self.manifest.extra["output"] = {"format": fmt, "dataset": dataset.name, "mode": self.mode}
        elapsed = time.monotonic() - started
        if self.crash is not None:
            status, reason = "failed", f"{type(self.crash).__name__}: {self.crash}"
        elif interrupted:
            status, reason = "stopped", "interrupted"
        elif self.stop_error is not None:
            status, reason = "stopped", self.stop_error.message
        else:
            status, reason = "completed", None
        self.manifest.end(status, reason=reason, stats=self.stats, session_elapsed_s=elapsed)
        manifest_path = self.manifest.write(self.output_dir)
        return RunResult(output_dir=self.output_dir, dataset_path=dataset, dataset_records=records,
                         samples=ResultSamples(parts), counts=counts, retries=self.retries, stats=self.stats,
                         elapsed_s=elapsed, warnings=list(self.warnings), stopped=self.stop_error,
                         manifest_path=manifest_path, resumed=bool(self.manifest.runs[:-1]),
                         mode=self.mode)

    def _drop_stale_dataset(self, dataset: Path, fmt: str) -> None:
        """An earlier session exported another file (``--format janus`` after ``messages``): it
        no longer matches the journals, so it goes (it is rebuilt, free from the cache, by running
        again with its format), and the run says so."""
        earlier = self.manifest.exported_dataset()
        if earlier is None or earlier[0] == dataset.name:
            return
        name, earlier_fmt = earlier
        stale = self.output_dir / name
        if stale.is_file():
            stale.unlink()
            self.warnings.append(f"removed {name} (format {earlier_fmt}) written by an earlier "
                                 f"session: the dataset is now {dataset.name} (format {fmt})")

    @staticmethod
    def _journal_lines(parts: Sequence[tuple[Path, array]]) -> Iterator[bytes]:
        for path, offsets in parts:
            if len(offsets) > 1:
                with open(path, "rb") as handle:
                    yield from handle


def _is_fatal(error: ProviderError) -> bool:
    from fountain.dispatch import FATAL_ERRORS

    return isinstance(error, FATAL_ERRORS)


# --- previews (`fountain render`) ----------------------------------------------------------------

PLACEHOLDER = (Turn("(the user's first message)", "(the assistant's first answer)"),
               Turn("(the user's second message)", "(the assistant's second answer)"))


def preview_requests(spec: Any, *, mode: str, direction: str | None = None,
                     seed: int | None = None) -> list[tuple[str, Request]]:
    """The requests a run would send first, without calling a model: a seed request and a
    derivation request built from a placeholder conversation (turn-by-turn mode: the user's
    first utterance, the assistant's answer, and the user's next line in a derivation)."""
    rules = Rules.from_spec(spec)
    seed_direction = direction or spec.seed_directions[0]
    derivational = list(spec.derivational_directions)
    derive_direction = direction if direction in derivational else (derivational[0] if derivational else seed_direction)
    persona = spec.personas[0] if getattr(spec, "personas", ()) else None
    instruct = spec.generation.type == "instruct"
    example = PLACEHOLDER[:1] if instruct else PLACEHOLDER
    out: list[tuple[str, Request]] = []
    if mode == "json":
        schema = request_schema(rules)
        sampling = spec_sampling(spec)
        out.append((f"seed request (direction {seed_direction!r})",
                    Request(json_messages(spec, SEED, seed_direction, persona=persona), schema, sampling,
                            0, seed, SEED)))
        out.append((f"derivation request (direction {derive_direction!r}, placeholder conversation)",
                    Request(json_messages(spec, DERIVATION, derive_direction, persona=persona,
                                          conversation=example), schema, sampling, 0, seed, DERIVATION)))
        return out
    from fountain.roleplay import Roleplay

    roleplay = Roleplay.from_spec(spec)
    seed_instr = _canonical_direction(seed_direction).instructions
    derive_instr = _canonical_direction(derive_direction).instructions
    user_sampling = spec_sampling(spec, roleplay.max_tokens("user"))
    assistant_sampling = spec_sampling(spec, roleplay.max_tokens("assistant"))
    out.append((f"seed, user turn 1 (direction {seed_direction!r})",
                Request(roleplay.user_messages(seed_instr, persona, ()), None, user_sampling, 0, seed,
                        "seed:user")))
    out.append((f"seed, assistant turn 1 (direction {seed_direction!r})",
                Request(roleplay.assistant_messages(seed_instr, (), example[0].user), None,
                        assistant_sampling, 0, seed, "seed:assistant")))
    history = () if instruct else example
    shown = example if instruct else ()
    out.append((f"derivation, next user turn (direction {derive_direction!r}, placeholder conversation)",
                Request(roleplay.user_messages(derive_instr, persona, history, shown), None, user_sampling,
                        0, seed, "derivation:user")))
    return out


# --- entry points ------------------------------------------------------------------------------


def make_provider(spec: Any, options: RunOptions) -> Provider:
    """The provider a run uses: CLI options > environment > the spec's model block > local."""
    from fountain.providers import create_provider, resolve_provider_config

    name = options.provider
    if options.replay is not None:
        if name not in (None, "fake"):
            raise FountainError("--replay works with the fake provider only", location="--replay",
                                hint="drop --provider, or use --provider fake")
        name = "fake"
    config = resolve_provider_config(spec.model, provider=name, model=options.model,
                                     base_url=options.base_url)
    if options.replay is not None:
        config = replace(config, replay=str(options.replay))
    return create_provider(config)


async def run_async(spec: Any, options: RunOptions | None = None, *,
                    provider: Provider | None = None) -> RunResult:
    """Generate ``spec``'s dataset (see the module docstring). ``provider`` overrides the one the
    spec and options name (tests pass a fake); a provider made here is closed at the end."""
    options = options or RunOptions()
    effective = effective_spec(spec, options)
    own = provider is None
    if provider is None:
        provider = make_provider(effective, options)
    try:
        return await Engine(effective, options, provider, source_spec=spec).run()
    finally:
        if own:
            await provider.aclose()


def run(spec: Any, options: RunOptions | None = None, *, provider: Provider | None = None) -> RunResult:
    """Synchronous :func:`run_async`."""
    return aio.run(run_async(spec, options, provider=provider))
