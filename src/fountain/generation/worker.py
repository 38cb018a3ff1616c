"""One task -> its prompts -> the model -> validation -> an accepted sample or a reject.

The :class:`Worker` is the unit of generation: it holds no file, no queue and no global state,
only the spec and something that answers requests (``model.complete(request)``: the dispatcher
with its cache, limits and retries, a batch job's results, or a remote actor). The run's
engine (:mod:`fountain.run.engine`) schedules tasks over workers and journals their outcomes.

Two modes: ``json`` (one request for the whole conversation, validated against the
conversation schema) and ``turns`` (one request per utterance, the model playing each role in
turn, :mod:`fountain.generation.roleplay`). An answer that fails validation is asked again up to
``max_retries`` times, then becomes a reject with its reason code.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from fountain.errors import ProviderError
from fountain.generation.gates import check_utterance_gates, is_cut_off
from fountain.generation.plan import DERIVATION, SEED, Task
from fountain.generation.requests import (
    canonical_direction,
    json_messages,
    messages_hash,
    short_hash,
    spec_sampling,
)
from fountain.generation.roleplay import retry_sampling
from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.shape import request_schema
from fountain.generation.utterance import check_utterance, clean_utterance, trim_to_sentence
from fountain.generation.validate import check_turns, words
from fountain.generation.validation_pool import InlineValidator
from fountain.providers.base import Completion, Message, Request
from fountain.safety import safe_text
from fountain.types import Provenance, Sample, Turn, Usage

if TYPE_CHECKING:  # pragma: no cover
    from fountain.spec.directions import Direction
    from fountain.spec.model import Spec

RAW_MAX_CHARS = 20_000  # raw answers kept in rejects.jsonl are cut here
PROVIDER_ERROR = "provider_error"  # reject reason; such tasks are tried again on resume
REASK = "Your previous answer was invalid: {detail}. Answer again with only the JSON object."
# Turn-by-turn utterances the local model may ask again (at least; the spec's max_retries if more).
LOCAL_UTTERANCE_RETRIES = 4
LOCAL_CONVERSATION_RESTARTS = 1  # a rejected turn-by-turn conversation of the local model: started again


class Model(Protocol):
    """What a worker asks: anything that completes a request (the dispatcher, a batch's results)."""

    def complete(self, request: Request) -> Awaitable[Completion]: ...


# --- one task ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one task came to: ``sample`` (accepted) or ``reject`` (a rejects.jsonl record)."""

    task: Task
    sample: Sample | None = None
    reject: dict[str, Any] | None = None
    completion_tokens: int = 0
    # Turn-by-turn utterances asked again (role, reason, detail, text): each a rejects.jsonl line.
    retried: tuple[dict[str, Any], ...] = ()


class _Attempts:
    """Usage and last raw answer accumulated over a task's requests."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.raw = ""
        self.model = ""
        self.reasons: list[str] = []
        self.retried: list[dict[str, Any]] = []  # turn-by-turn utterances that failed a check
        self.attempts = 0
        self.last_attempt = 0


class Worker:
    """Runs tasks of one spec against ``model``. ``scenario`` (GenLLM) goes into every prompt,
    ``iteration`` (Filter round, Feedback iteration) into each sample's provenance."""

    def __init__(
        self,
        spec: Spec,
        model: Model,
        *,
        provider_name: str,
        provider_model: str = "",
        mode: str = "json",
        seed: int | None = None,
        fingerprint: str = "",
        roleplay: Any = None,
        scenario: str = "",
        iteration: int = 0,
        on_retry: Callable[[], None] | None = None,
        validator: InlineValidator | None = None,
    ) -> None:
        self.spec = spec
        self.dispatcher = model
        self.provider_name = provider_name
        self.provider_model = provider_model
        self.gen = spec.generation
        self.type = self.gen.type
        self.instruct = self.type == "instruct"
        self.rules = Rules.from_spec(spec)
        self.schema = request_schema(self.rules)
        # json mode's answers: validated in the event loop, or in worker processes (a ValidationPool)
        self.validator = validator or InlineValidator(self.rules)
        self.mode = mode
        self.reask = provider_name != "local"
        self.seed = seed
        self.max_retries = max(0, self.gen.max_retries)
        self.fingerprint = fingerprint
        self.sampling = spec_sampling(spec)
        self.roleplay = roleplay
        if mode == "turns" and roleplay is None:
            from fountain.generation.roleplay import Roleplay

            self.roleplay = Roleplay.from_spec(spec)
        self.scenario = scenario
        self.iteration = iteration
        self.on_retry = on_retry
        self.retries = 0
        self._directions: dict[str, Any] = {}
        # Seed prompts depend on (direction, persona, scenario) only: rendered once each
        # (unless a template draws at random, e.g. Jinja's ``random`` filter).
        self._seed_messages: dict[tuple[Any, ...], tuple[tuple[Message, ...], str]] = {}
        self._pure_prompts = "random" not in "".join(
            str(getattr(spec, name, "") or "") for name in ("initial_prompt", "system_prompt")
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _direction(self, name: str) -> Direction:
        direction = self._directions.get(name)
        if direction is None:
            direction = self._directions[name] = canonical_direction(name)
        return direction

    def _attempt_seed(self, attempt: int) -> int | None:
        # A new sampling seed for each re-ask, so a retry is a new draw (and a new cache key).
        if attempt == 0:
            return self.seed
        return (self.seed if self.seed is not None else 0) + attempt * 1_000_003

    # --- one task --------------------------------------------------------------------------------

    async def execute(self, task: Task, parent: Sample | None) -> Outcome:
        """Ask for ``task``'s conversation (``parent``: a derivation's accepted seed) until it
        passes validation or the retries are spent: an accepted sample or a reject record."""
        if task.kind == DERIVATION and parent is None:
            raise RuntimeError(f"derivation {task.id} has no parent {task.parent_id}")
        if self.mode == "turns":
            return await self._turns_task(task, parent)
        return await self._json_task(task, parent)

    def _prefix(self, task: Task, parent: Sample | None) -> tuple[Turn, ...]:
        if parent is None or self.instruct:
            return ()
        return tuple(parent.turns[: task.prefix_turns])

    def _json_messages(self, task: Task, shown: Sequence[Turn]) -> tuple[tuple[Message, ...], str]:
        """A json-mode request's messages and their hash. A seed's are the same for every seed of
        its direction and persona, so they are rendered once (the same tuple also lets the cache
        key reuse its serialised messages)."""
        key = (task.direction, task.persona, self.scenario)
        cacheable = task.kind == SEED and not shown and self._pure_prompts
        if cacheable and key in self._seed_messages:
            return self._seed_messages[key]
        messages = json_messages(
            self.spec, task.kind, task.direction, persona=task.persona, conversation=shown, scenario=self.scenario
        )
        made = (messages, messages_hash(messages))
        if cacheable:
            self._seed_messages[key] = made
        return made

    async def _json_task(self, task: Task, parent: Sample | None) -> Outcome:
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
                    sent = messages + (
                        Message("assistant", state.raw[:4000] or "(empty answer)"),
                        Message("user", REASK.format(detail=rejected.detail)),
                    )
            request = Request(
                messages=sent,
                schema=self.schema,
                sampling=self.sampling,
                sample_index=task.index,
                seed=self._attempt_seed(attempt),
                purpose=task.kind,
            )
            completion = await self.dispatcher.complete(request)
            state.attempts += 1
            state.usage = state.usage + completion.usage
            state.raw = completion.text if isinstance(completion.text, str) else str(completion.text)
            state.model = completion.model or state.model
            payload = completion.data if completion.data is not None else state.raw
            result = await self.validator(payload, task.kind, prefix, parent_turns, completion.finish_reason)
            if isinstance(result, Accepted):
                turns = prefix + result.turns
                return self._accept(task, turns, state, prompt_hash, attempt)
            rejected = result
            state.reasons.append(result.reason)
        return self._reject(task, rejected, state, prompt_hash)

    async def _turns_task(self, task: Task, parent: Sample | None) -> Outcome:
        """A turn-by-turn conversation; with the local model a rejected one is started again
        (LOCAL_CONVERSATION_RESTARTS times, new draws; each restart is a rejects.jsonl line)."""
        state = _Attempts()
        restarts = LOCAL_CONVERSATION_RESTARTS if self.provider_name == "local" else 0
        for restart in range(restarts + 1):
            outcome = await self._turns_once(task, parent, state, restart)
            if outcome.sample is not None or restart == restarts or outcome.reject is None:
                return outcome
            reject = outcome.reject
            state.retried.append(
                {
                    "role": "conversation",
                    "attempt": restart,
                    "reason": reject["reason"],
                    "detail": reject["detail"],
                    "raw": "",
                }
            )
        raise AssertionError("unreachable")

    async def _turns_once(self, task: Task, parent: Sample | None, state: _Attempts, restart: int) -> Outcome:
        assert self.roleplay is not None
        roleplay = self.roleplay
        prefix = self._prefix(task, parent)
        example = parent.turns if (parent is not None and self.instruct) else ()
        instructions = self._direction(task.direction).instructions
        lo, hi = self.rules.bounds
        rng = random.Random(int(short_hash([task.id, self.seed]), 16))
        n_turns = rng.randint(lo, hi)
        history = list(prefix)
        continuation: list[Turn] = []
        prompt_hash = messages_hash(roleplay.user_messages(instructions, task.persona, history, example))
        failure: Rejected | None = None
        for _ in range(n_turns):
            user = await self._utterance(
                task,
                "user",
                state,
                restart=restart,
                history=history,
                messages=lambda h=tuple(history): roleplay.user_messages(instructions, task.persona, h, example),
            )
            if isinstance(user, Rejected):
                failure = user
                break
            answer = await self._utterance(
                task,
                "assistant",
                state,
                restart=restart,
                history=history,
                user_text=user,
                messages=lambda h=tuple(history), u=user: roleplay.assistant_messages(instructions, h, u),
            )
            if isinstance(answer, Rejected):
                failure = answer
                break
            turn = Turn(user, answer)
            continuation.append(turn)
            history.append(turn)
        if failure is not None and len(continuation) < lo:
            return self._reject(task, failure, state, prompt_hash)
        # A conversation whose later utterance failed every retry ends where it was still good;
        # so does one whose last turns fail a conversation-level rule (an echo of an earlier turn).
        parent_turns = parent.turns if parent is not None else ()
        problem = check_turns(continuation, self.rules, kind=task.kind, prefix=prefix, parent=parent_turns)
        while problem is not None and len(continuation) > lo:
            continuation.pop()
            problem = check_turns(continuation, self.rules, kind=task.kind, prefix=prefix, parent=parent_turns)
        if problem is not None:
            return self._reject(task, problem, state, prompt_hash)
        return self._accept(task, tuple(prefix) + tuple(continuation), state, prompt_hash, state.last_attempt)

    async def _utterance(
        self,
        task: Task,
        role: str,
        state: _Attempts,
        *,
        restart: int = 0,
        history: Sequence[Turn],
        messages: Callable[..., tuple[Message, ...]],  # called with no arguments
        user_text: str | None = None,
    ) -> str | Rejected:
        """One utterance of ``role``, asked again up to max_retries times until it passes."""
        assert self.roleplay is not None
        sampling = spec_sampling(self.spec, self.roleplay.max_tokens(role))
        if self.provider_name == "local":
            sampling = replace(sampling, stop=self.roleplay.stop(role))
        problem: Rejected | None = None
        earlier = {" ".join(words(m)) for t in history for m in (t.user, t.assistant)}
        # One line is cheap to ask again: the local model gets at least LOCAL_UTTERANCE_RETRIES.
        retries = max(self.max_retries, LOCAL_UTTERANCE_RETRIES) if self.provider_name == "local" else self.max_retries
        if user_text is not None:
            earlier.add(" ".join(words(user_text)))
        for attempt in range(retries + 1):
            if attempt:
                self._on_retry()
            sent = messages()
            hint = self.roleplay.retry_hint(role, problem.reason) if problem is not None else ""
            if hint and sent and sent[0].role == "system":
                # A retry says what was wrong with the last line (a new prompt, so a new draw).
                sent = (Message("system", f"{sent[0].content}\n{hint}"), *sent[1:])
            request = Request(
                messages=sent,
                schema=None,
                sampling=retry_sampling(sampling, attempt) if self.provider_name == "local" else sampling,
                sample_index=task.index,
                seed=self._attempt_seed(attempt + 1000 * restart),  # a restarted conversation: new draws
                purpose=f"{task.kind}:{role}",
            )
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
            if completion.finish_reason == "length" or is_cut_off(text):
                # Cut at the token limit or a stop sequence: keep the full sentences before.
                text = trim_to_sentence(text)
            problem = self._other_label(text, role)
            text = clean_utterance(text, self.rules.roles)
            if problem is None:
                problem = check_utterance(text, role, self.rules)
            if problem is None and " ".join(words(text)) in earlier:
                problem = Rejected("elimination:repetition", f"the {role} repeats an earlier message: {text[:60]!r}")
            if problem is None and self.rules.scene is not None:
                said = [(r, m) for t in history for r, m in (("user", t.user), ("assistant", t.assistant))]
                if user_text is not None:
                    said.append(("user", user_text))
                failed = check_utterance_gates(role, text, self.rules.scene, said)
                if failed is not None:
                    problem = Rejected(*failed)
            if problem is None:
                return text
            state.reasons.append(problem.reason)
            state.retried.append(
                {
                    "role": role,
                    "attempt": attempt,
                    "reason": problem.reason,
                    "detail": problem.detail,
                    "raw": raw[:2000],
                }
            )
        assert problem is not None
        return problem

    def _other_label(self, text: str, role: str) -> Rejected | None:
        """A line that opens with the other role's label ("COUNSELOR: ...") is that role speaking:
        a role reversal to ask again, not a label to strip."""
        if self.rules.scene is None:
            return None
        scene = self.rules.scene
        other = scene.assistant_role if role == "user" else scene.user_role
        head = text.lstrip(" *_\"'>#").lower()
        for name in {other.lower(), other.replace("_", " ").lower()}:
            for start in (name, f"the {name}"):
                if head.startswith(start) and head[len(start) :].lstrip(" *_").startswith((":", "(")):
                    return Rejected(
                        "gate:role_reversal", f"the {role} line opens as the {other}: {text.strip()[:60]!r}"
                    )
        return None

    # --- results ---------------------------------------------------------------------------------

    def _provenance(self, task: Task, state: _Attempts, prompt_hash: str, attempt: int) -> Provenance:
        return Provenance(
            kind=task.kind,
            direction=task.direction,
            category=self.spec.category,
            conversation_type=self.type,
            parent_id=task.parent_id,
            prefix_turns=task.prefix_turns,
            provider=self.provider_name,
            model=state.model or self.provider_model,
            prompt_hash=prompt_hash,
            usage=state.usage,
            spec_fingerprint=self.fingerprint,
            persona=task.persona,
            attempt=attempt,
            iteration=self.iteration,
        )

    def _accept(self, task: Task, turns: Sequence[Turn], state: _Attempts, prompt_hash: str, attempt: int) -> Outcome:
        sample = Sample(task.id, tuple(turns), self._provenance(task, state, prompt_hash, attempt))
        return Outcome(
            task, sample=sample, completion_tokens=state.usage.completion_tokens, retried=self._retried(task, state)
        )

    def _reject(
        self,
        task: Task,
        rejected: Rejected | None,
        state: _Attempts,
        prompt_hash: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> Outcome:
        prov = self._provenance(task, state, prompt_hash, max(0, state.attempts - 1))
        meta = asdict(prov)
        meta["type"] = meta.pop("conversation_type")
        for key in ("kind", "direction"):
            meta.pop(key)
        meta.pop("judge", None)  # a generation reject was never judged
        meta["reasons"] = list(state.reasons)
        record = {
            "id": task.id,
            "kind": task.kind,
            "direction": task.direction,
            "reason": reason or (rejected.reason if rejected else "schema"),
            "detail": detail or (rejected.detail if rejected else ""),
            "raw": state.raw[:RAW_MAX_CHARS],
            "attempts": state.attempts,
            "metadata": meta,
        }
        return Outcome(
            task, reject=record, completion_tokens=state.usage.completion_tokens, retried=self._retried(task, state)
        )

    @staticmethod
    def _retried(task: Task, state: _Attempts) -> tuple[dict[str, Any], ...]:
        """rejects.jsonl records of the utterances asked again (id ``<task id>~u<n>``)."""
        return tuple(
            {
                "id": f"{task.id}~u{n}",
                "kind": "utterance",
                "task": task.id,
                "direction": task.direction,
                "role": item["role"],
                "reason": item["reason"],
                "detail": item["detail"],
                "raw": item["raw"],
                "attempt": item["attempt"],
            }
            for n, item in enumerate(state.retried, 1)
        )

    def _on_retry(self) -> None:
        self.retries += 1
        if self.on_retry is not None:
            self.on_retry()

    def provider_error(self, task: Task, error: ProviderError) -> Outcome:
        """The reject of a task whose request failed for good (after the dispatcher's retries);
        such a task is tried again on resume."""
        return self._reject(
            task,
            None,
            _Attempts(),
            "",
            reason=PROVIDER_ERROR,
            detail=safe_text(f"{type(error).__name__}: {error.message}"),  # a server may echo the key
        )
