"""How should the embedded 135M model write a conversation: whole-conversation JSON, or turn by turn?

Measures, on a marriage-counselling scene (counselee = user role, counselor = assistant role):

* ``json-janus``  - the original Auto Data Fountain seed prompt (filled as the original did) with
  schema-constrained decoding, one call per conversation;
* ``json-plain``  - a short, explicit prompt with the same schema;
* ``turns``       - turn by turn in plain text, one call per utterance: the model plays the user role
  and the assistant role alternately (CAMEL style: each side sees the other's lines as "user");
* ``turns-reminder`` - the same, with a one-line role reminder after the counselor's last line;
* ``turns-ask``   - the same assistant side; the user side is a writing task quoting only the
  counselor's last line ("Your counselor said: ... Write your reply").

For each: wall time, completion tokens/s, validity, turns produced, and crude quality signals:
repetition (share of repeated word 3-grams in a conversation), empty and duplicate utterances,
echo (share of a user utterance's 3-grams copied from the turn before it), role slips (user
utterances that talk like the counselor) and turns cut by max_tokens.

    python benchmarks/bench_local_model.py                  # 4 conversations x 3 turns per mode
    python benchmarks/bench_local_model.py -n 8 --turns 4 --json results.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field

from fountain.providers.base import Message, ProviderConfig, Request, Sampling
from fountain.providers.local import LocalProvider

DIAGRAM = """erDiagram
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"

    %% Comments for relationship attributes
    %% Start date: 2024-02-14
    %% Frequency: Weekly
    %% Topic: marriage guidance"""
USER_ROLE, ASSISTANT_ROLE = "COUNSELEE", "COUNSELOR"

# The original project's seed prompt and output format (samples in ../shared/corpus/janus).
JANUS_PROMPT = """{diagram} # erDiagram
------------------------------ # delimiter
The above erDiagram describes the basic setup of a certain scene.

Generate possible first few conversations between a user and an assistant based on the erDiagram.
The conversations should sound natural and logical.
The direction or the style of the conversations should be "general". # direction
The conversations should be occured without exposuring the underlying information of the erDiagram.

The user should play the role of "{user}" appeared in the erDiagram. The user should focus on the given role. # user role
The assistant should play the role of "{assistant}" appeared in the erDiagram. The assistant should focus on the given role. # assistant role
Based on the words that the user say, the assistant gives appropriate, detailed, and long answers.
The generated conversations are recorded in a valid JSON as
{{"conversations":[{{"user": text, "assistant": text}},...]}}.
"""

# Best whole-conversation wording found for the 135M model: plain sentences, the roles described
# by what the people are (not by diagram names), no example turn (it gets copied verbatim).
PLAIN_PROMPT = (
    "Write a realistic conversation from a weekly marriage counselling session.\n"
    "The user is the COUNSELEE: a married person who is struggling with their relationship.\n"
    "The assistant is the COUNSELOR: a warm, professional marriage counselor who gives detailed, "
    "practical advice.\n"
    "The user speaks first. Each turn is one user message and the assistant's reply. "
    "Write {turns} turns.\n"
    'Answer in JSON: {{"conversations": [{{"user": "...", "assistant": "..."}}, ...]}}'
)

# Turn by turn: each side gets a short role-play system message; the counselor's greeting opens
# the session so the first user utterance answers something concrete.
USER_SYSTEM = (
    "Role-play. You are the client in a marriage counselling session, talking to your counselor. "
    "Stay in character: a real person with a real problem in your marriage. "
    "Say one short thing, 1-3 sentences."
)
ASSISTANT_SYSTEM = (
    "You are an experienced marriage counselor. Answer your client warmly and give practical, specific advice."
)
OPENING = "The session begins. Tell your counselor what brings you here today."
# Appended to the counselor's last line in the user-side chat ("turns-reminder" mode): a 135M
# model forgets its role after one exchange and starts talking like the counselor.
USER_REMINDER = "(Answer as the client: talk about your own marriage, in 1-3 sentences.)"
USER_MAX_TOKENS, ASSISTANT_MAX_TOKENS, HISTORY_TURNS = 70, 180, 3

# "turns-ask": the user side is not role-played in a chat but asked as a writing task that quotes
# only the counselor's last line; the model stays in the client's shoes more often.
ASK_SYSTEM = "You are a person whose marriage is in trouble. You are seeing a marriage counselor."
ASK_FIRST = (
    "Write what you say first to your counselor: one or two sentences about your own marriage. Write only your words."
)
ASK_NEXT = (
    'Your counselor said: "{last}"\n\nWrite your reply to the counselor: one or two '
    "sentences about your own marriage, ending with a question. Write only your words."
)

# A user utterance that talks like the counselor: the 135M model's most common failure.
ROLE_SLIP = re.compile(
    r"\b(your (marriage|relationship|partner|spouse|husband|wife|journey|story|concerns?)|"
    r"my clients?|i'?d be happy to|as a (marriage )?counsel+or|i'?m here to (help|support|offer)|"
    r"i'?m (so )?glad (you|to hear)|share your|what brings you)\b",
    re.I,
)


def conversation_schema(turns: int) -> dict:
    turn = {
        "type": "object",
        "properties": {"user": {"type": "string", "minLength": 1}, "assistant": {"type": "string", "minLength": 1}},
        "required": ["user", "assistant"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"conversations": {"type": "array", "items": turn, "minItems": turns, "maxItems": turns}},
        "required": ["conversations"],
        "additionalProperties": False,
    }


def complete_sentences(text: str) -> str:
    """First paragraph, cut after its last finished sentence (a turn cut by max_tokens)."""
    text = text.strip().split("\n\n")[0].strip()
    ends = list(re.finditer(r"[.!?][\"')\]]?(?=\s|$)", text))
    return text[: ends[-1].end()].strip() if ends else text


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def trigrams(text: str) -> list[tuple[str, ...]]:
    w = words(text)
    return [tuple(w[i : i + 3]) for i in range(len(w) - 2)]


@dataclass
class Result:
    seconds: float = 0.0
    tokens: int = 0
    valid: bool = False
    turns: list[tuple[str, str]] = field(default_factory=list)
    truncated: int = 0  # utterances (or whole outputs) cut by max_tokens

    def quality(self) -> dict[str, float]:
        utterances = [u for turn in self.turns for u in turn]
        grams = [g for u in utterances for g in trigrams(u)]
        normalized = [" ".join(words(u)) for u in utterances]
        echo = []
        for i, (user, _) in enumerate(self.turns[1:], start=1):
            prev = set(trigrams(self.turns[i - 1][1]))
            mine = trigrams(user)
            if mine:
                echo.append(sum(g in prev for g in mine) / len(mine))
        return {
            "repetition": 1 - len(set(grams)) / len(grams) if grams else 0.0,
            "empty": sum(not n for n in normalized),
            "duplicates": len(normalized) - len(set(normalized)),
            "echo": statistics.mean(echo) if echo else 0.0,
            "role_slips": sum(bool(ROLE_SLIP.search(u)) for u, _ in self.turns),
            "words_per_utterance": statistics.mean(len(words(u)) for u in utterances) if utterances else 0.0,
        }


def run_json(provider: LocalProvider, prompt: str, turns: int, seed: int, index: int) -> Result:
    import jsonschema

    schema = conversation_schema(turns)
    request = Request(
        messages=(Message("user", prompt),),
        schema=schema,
        seed=seed,
        sample_index=index,
        sampling=Sampling(max_tokens=220 * turns),
    )
    start = time.perf_counter()
    completion = provider.complete_sync(request)
    result = Result(seconds=time.perf_counter() - start, tokens=completion.usage.completion_tokens)
    result.truncated = int(completion.finish_reason == "length")
    data = completion.data
    if data is not None:
        result.valid = not list(jsonschema.Draft202012Validator(schema).iter_errors(data))
        for turn in data.get("conversations", []) if isinstance(data, dict) else []:
            if isinstance(turn, dict):
                result.turns.append((str(turn.get("user", "")), str(turn.get("assistant", ""))))
    return result


def run_turns(
    provider: LocalProvider, turns: int, seed: int, index: int, *, reminder: bool = False, ask: bool = False
) -> Result:
    result = Result()
    start = time.perf_counter()
    for t in range(turns):
        recent = result.turns[-HISTORY_TURNS:]
        # The user side: its own lines are "assistant", the counselor's are "user".
        messages = [Message("system", USER_SYSTEM), Message("user", OPENING)]
        for user, assistant in recent:
            messages += [Message("assistant", user), Message("user", assistant)]
        if reminder and recent:
            messages[-1] = Message("user", f"{messages[-1].content}\n\n{USER_REMINDER}")
        if ask:
            last = recent[-1][1] if recent else None
            messages = [
                Message("system", ASK_SYSTEM),
                Message("user", ASK_NEXT.format(last=last) if last else ASK_FIRST),
            ]
        said = provider.complete_sync(
            Request(
                messages=tuple(messages),
                seed=seed,
                sample_index=index * 1000 + 2 * t,
                sampling=Sampling(max_tokens=USER_MAX_TOKENS),
            )
        )
        user = complete_sentences(said.text)
        messages = [Message("system", ASSISTANT_SYSTEM)]
        for u, a in recent:
            messages += [Message("user", u), Message("assistant", a)]
        messages.append(Message("user", user))
        answer = provider.complete_sync(
            Request(
                messages=tuple(messages),
                seed=seed,
                sample_index=index * 1000 + 2 * t + 1,
                sampling=Sampling(max_tokens=ASSISTANT_MAX_TOKENS),
            )
        )
        assistant = complete_sentences(answer.text) if answer.finish_reason == "length" else answer.text.strip()
        result.tokens += said.usage.completion_tokens + answer.usage.completion_tokens
        result.truncated += int(said.finish_reason == "length") + int(answer.finish_reason == "length")
        result.turns.append((user, assistant))
    result.seconds = time.perf_counter() - start
    result.valid = len(result.turns) == turns and all(u and a for u, a in result.turns)
    return result


def summarize(name: str, results: list[Result]) -> dict:
    seconds = sum(r.seconds for r in results)
    tokens = sum(r.tokens for r in results)
    qualities = [r.quality() for r in results]
    row = {
        "mode": name,
        "conversations": len(results),
        "s_per_conversation": seconds / len(results),
        "tokens_per_s": tokens / seconds if seconds else 0.0,
        "valid": sum(r.valid for r in results) / len(results),
        "turns": statistics.mean(len(r.turns) for r in results),
        "truncated": sum(r.truncated for r in results),
    }
    for key in qualities[0]:
        values = [q[key] for q in qualities]
        row[key] = statistics.mean(values) if key in ("repetition", "echo", "words_per_utterance") else sum(values)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=None, help="a GGUF file (default: bundled SmolLM2-135M)")
    parser.add_argument("--modes", default="json-janus,json-plain,turns")
    parser.add_argument("--show", type=int, default=1, help="conversations to print per mode")
    parser.add_argument("--json", dest="json_out", default=None, help="write figures and samples here")
    args = parser.parse_args(argv)

    provider = LocalProvider(ProviderConfig(model=args.model))
    start = time.perf_counter()
    provider.load()
    print(
        f"model {provider.model}: loaded and verified in {time.perf_counter() - start:.2f}s, "
        f"{provider.n_threads} threads, n_ctx {provider.n_ctx}"
    )

    prompts = {
        "json-janus": JANUS_PROMPT.format(diagram=DIAGRAM, user=USER_ROLE, assistant=ASSISTANT_ROLE),
        "json-plain": PLAIN_PROMPT.format(turns=args.turns),
    }
    rows, samples = [], {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        results = []
        for i in range(args.conversations):
            if mode in ("turns", "turns-reminder", "turns-ask"):
                results.append(
                    run_turns(
                        provider, args.turns, args.seed, i, reminder=mode == "turns-reminder", ask=mode == "turns-ask"
                    )
                )
            elif mode in prompts:
                results.append(run_json(provider, prompts[mode], args.turns, args.seed, i))
            else:
                parser.error(f"unknown mode {mode!r}")
        rows.append(summarize(mode, results))
        samples[mode] = [r.turns for r in results]
        for r in results[: args.show]:
            print(f"\n--- {mode} sample ({r.seconds:.1f}s, {r.tokens} tokens, valid={r.valid})")
            for user, assistant in r.turns:
                print(f"  user:      {user}\n  assistant: {assistant}")
        sys.stdout.flush()

    columns = [
        "mode",
        "s_per_conversation",
        "tokens_per_s",
        "valid",
        "turns",
        "truncated",
        "repetition",
        "empty",
        "duplicates",
        "echo",
        "role_slips",
        "words_per_utterance",
    ]
    print("\n" + " | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump({"rows": rows, "samples": samples, "args": vars(args)}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
