"""Turn by turn with the local model: a cut-off line keeps its full sentences, a line is asked
again up to LOCAL_UTTERANCE_RETRIES times from a wider distribution, and a conversation whose last
turn breaks a conversation-level rule ends before it."""

from __future__ import annotations

import asyncio
import random

from fountain.generation.plan import SEED, Task, task_id
from fountain.generation.requests import short_hash
from fountain.generation.roleplay import retry_sampling
from fountain.generation.worker import LOCAL_UTTERANCE_RETRIES, Worker
from fountain.providers.base import Completion, Request, Sampling
from fountain.spec.load import load_spec
from fountain.types import Usage
from spec_helpers import VALID, make_spec

USER = "My husband and I argue about money in our marriage every single week."
ANSWER = "When did the arguments about money start, and what happens right before one?"


class Lines:
    """Answers by the request's place in the conversation: ``answer(role, turn, attempt)``."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[Request] = []
        self.seen: dict[tuple[str, int], int] = {}

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        role = request.purpose.split(":")[-1]
        turn = len(request.messages) // 2 if role == "user" else (len(request.messages) + 1) // 2
        key = (role, turn)
        attempt = self.seen.get(key, 0)
        self.seen[key] = attempt + 1
        text, finish = self.answer(role, turn, attempt)
        return Completion(text=text, usage=Usage(10, 10), model="m", finish_reason=finish)


def worker(tmp_path, model, *, provider="local", min_turns=1, max_turns=1, seed=1):
    setup = VALID.replace("  max_turns: 4\n", f"  min_turns: {min_turns}\n  max_turns: {max_turns}\n")
    spec = load_spec(make_spec(tmp_path, setup))
    return Worker(spec, model, provider_name=provider, mode="turns", seed=seed), spec


def seed_task(index: int = 0) -> Task:
    return Task(task_id(SEED, "general", index, None, 0, None), SEED, "general", index)


def test_a_line_cut_off_at_a_stop_sequence_keeps_its_full_sentences(tmp_path):
    def answer(role, turn, attempt):
        if role == "user":
            return USER + " Last night he said that I", "stop"
        return ANSWER, "stop"

    model = Lines(answer)
    w, _ = worker(tmp_path, model)
    outcome = asyncio.run(w.execute(seed_task(), None))
    assert outcome.sample is not None, outcome.reject
    assert outcome.sample.turns[0].user == USER
    assert len(model.requests) == 2  # trimmed, not asked again


def test_the_local_model_asks_a_line_again_from_a_wider_distribution(tmp_path):
    def answer(role, turn, attempt):
        if role == "user":
            return USER, "stop"
        return (USER, "stop") if attempt < LOCAL_UTTERANCE_RETRIES else (ANSWER, "stop")  # echoes, then answers

    model = Lines(answer)
    w, _ = worker(tmp_path, model)
    outcome = asyncio.run(w.execute(seed_task(), None))
    assert outcome.sample is not None, outcome.reject
    asked = [r for r in model.requests if r.purpose.endswith("assistant")]
    assert len(asked) == LOCAL_UTTERANCE_RETRIES + 1  # the spec's max_retries (2) is raised for one line
    temperatures = [r.sampling.temperature for r in asked]
    penalties = [r.sampling.repeat_penalty for r in asked]
    assert temperatures == sorted(temperatures) and temperatures[-1] > temperatures[0] == 0.7
    assert penalties[0] is None and all(p is not None and p > 1.1 for p in penalties[1:])
    assert [r["reason"] for r in outcome.retried] == ["elimination:repetition"] * LOCAL_UTTERANCE_RETRIES


def test_another_provider_keeps_the_specs_retries_and_sampling(tmp_path):
    model = Lines(lambda role, turn, attempt: (USER, "stop"))
    w, _ = worker(tmp_path, model, provider="openai")
    outcome = asyncio.run(w.execute(seed_task(), None))
    assert outcome.reject is not None
    asked = [r for r in model.requests if r.purpose.endswith("assistant")]
    assert len(asked) == 3 and {r.sampling.repeat_penalty for r in asked} == {None}
    assert {r.sampling.temperature for r in asked} == {0.7}


def test_retry_sampling_rises_with_the_attempt_and_caps():
    base = Sampling(temperature=0.7, max_tokens=64)
    assert retry_sampling(base, 0) == base
    first, fourth = retry_sampling(base, 1), retry_sampling(base, 4)
    assert 0.7 < first.temperature < fourth.temperature <= 1.0
    assert 1.1 < first.repeat_penalty < fourth.repeat_penalty
    assert retry_sampling(Sampling(temperature=1.3), 2).temperature == 1.3  # never lowered


def test_a_conversation_whose_last_turn_repeats_a_sentence_ends_before_it(tmp_path):
    repeated = "It helps to name one small thing you both can change this week."

    def answer(role, turn, attempt):
        if role == "user":
            return [
                USER,
                "We tried talking at dinner, but it turned into another fight.",
                "What should I say to him tonight?",
            ][turn - 1], "stop"
        if turn == 1:
            return f"{ANSWER} {repeated}", "stop"
        if turn == 2:
            return "Dinner is a hard moment to start; try a calm time on the weekend instead.", "stop"
        return f"Tell him how you feel about the money. {repeated}", "stop"

    # A run seed for which this task plans three turns.
    task = seed_task()
    seed = next(s for s in range(100) if random.Random(int(short_hash([task.id, s]), 16)).randint(1, 3) == 3)
    model = Lines(answer)
    w, _ = worker(tmp_path, model, max_turns=3, seed=seed)
    outcome = asyncio.run(w.execute(task, None))
    assert outcome.sample is not None, outcome.reject
    assert len(outcome.sample.turns) == 2  # the third turn said the first answer's sentence again
    assert outcome.retried == () and len(model.requests) == 6  # every line passed on its own
    assert all(repeated not in t.assistant for t in outcome.sample.turns[1:])


def test_a_rejected_local_conversation_is_started_again_with_new_draws(tmp_path):
    def answer(role, turn, attempt):
        if role == "user":
            return USER, "stop"
        # The first conversation's answers all echo the user; the restarted one answers.
        return (USER, "stop") if attempt <= LOCAL_UTTERANCE_RETRIES else (ANSWER, "stop")

    model = Lines(answer)
    w, _ = worker(tmp_path, model)
    outcome = asyncio.run(w.execute(seed_task(), None))
    assert outcome.sample is not None, outcome.reject
    assert [t.assistant for t in outcome.sample.turns] == [ANSWER]
    restarts = [r for r in outcome.retried if r["role"] == "conversation"]
    assert len(restarts) == 1 and restarts[0]["reason"] == "elimination:repetition"
    # No request of the restart is one of the first conversation's (they would come from the cache).
    keys = [(r.prompt_text(), r.seed) for r in model.requests]
    assert len(keys) == len(set(keys)) == 1 + (LOCAL_UTTERANCE_RETRIES + 1) + 2
