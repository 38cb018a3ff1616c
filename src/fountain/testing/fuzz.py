"""Fuzzers of the two untrusted inputs: provider answers and spec folders.

Used by the default test suite (a few hundred examples) and by ``benchmarks/fuzz.py`` (the full
10,000 answers and 5,000 spec folders). Each example must end in one of three outcomes:

- ``accepted``: a :class:`~fountain.providers.base.Completion` that the response cache stores and
  gives back unchanged (no poisoned cache row);
- ``rejected:<reason>``: a :class:`~fountain.errors.ProviderError` (answers) with a message;
- ``error``: a located :class:`~fountain.errors.FountainError` (spec folders).

Anything else (a traceback, a hang, a run-away allocation) is a finding: the functions let it
propagate. Needs ``hypothesis`` (the ``dev`` extra); imported lazily.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fountain.errors import FountainError, ProviderError

_RETRY_AFTER = ["1", "0", "-5", "inf", "-inf", "nan", "NaN", "1e309", "100000", "1.5", "", "soon", "Wed, 21 Oct 2015"]


def answer_strategy() -> Any:
    """(status, headers, body bytes) a hostile or broken OpenAI-compatible server might send."""
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
    counts = st.one_of(values, st.sampled_from([-1, 0, 7, 10**30, float("nan"), float("inf"), "ten", "12", 1e30]))
    usage = st.one_of(values, st.fixed_dictionaries({"prompt_tokens": counts, "completion_tokens": counts}))
    content = st.one_of(
        st.text(max_size=80),
        values,
        st.just('{"conversations": [{"user": "hi", "assistant": "hello"}]}'),
        st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n + "]" * n),
        st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": values}), max_size=3),
    )
    shaped = st.builds(
        lambda c, u, f, m: {
            "choices": [{"message": {"role": "assistant", "content": c}, "finish_reason": f}],
            "usage": u,
            "model": m,
        },
        content,
        usage,
        values,
        values,
    )
    body = st.one_of(
        shaped.map(_encode),
        values.map(_encode),
        st.binary(max_size=200),
        st.integers(min_value=1, max_value=50_000).map(lambda n: b'{"choices": ' + b"[" * n + b"]" * n + b"}"),
        shaped.map(lambda v: _encode(v)[: max(1, len(_encode(v)) // 2)]),  # cut short
        st.just(b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 1e400}}'),
    )
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Retry-After": st.one_of(st.sampled_from(_RETRY_AFTER), header_text),
            "retry-after-ms": st.one_of(st.sampled_from(_RETRY_AFTER), header_text),
            "Content-Type": st.sampled_from(["application/json", "text/html", "application/octet-stream"]),
        },
    )
    status = st.sampled_from([200, 200, 200, 200, 400, 401, 404, 408, 429, 500, 503])
    return st.tuples(status, headers, body)


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def answer_outcome(provider: Any, cache: Any, loop: Any, index: int) -> str:
    """Ask ``provider`` once (the mock server answers with the next scripted raw answer) and say
    how it ended; an accepted answer must round-trip through the response cache unchanged."""
    from fountain.providers.base import Message, Request

    request = Request(messages=(Message("user", f"fuzz {index}"),), schema={"type": "object"}, sample_index=index)
    try:
        completion = loop.run_until_complete(provider.complete(request))
    except ProviderError as error:
        if not error.message:
            raise AssertionError("a provider error without a message") from error
        return f"rejected:{getattr(error, 'reason', None) or type(error).__name__}"
    usage = completion.usage
    for count in (usage.prompt_tokens, usage.completion_tokens):
        if not isinstance(count, int) or count < 0:
            raise AssertionError(f"unsanitised usage {usage!r}")
    if not isinstance(completion.text, str):
        raise AssertionError(f"text is {type(completion.text).__name__}")
    key = f"fuzz-{index}"
    cache.put(key, request, completion)
    again = cache.get(key)
    if again is None or again.text != completion.text or again.usage != completion.usage:
        raise AssertionError("the cache gave back another answer")
    if not _same_json(again.data, completion.data):
        raise AssertionError("the cache gave back other data")
    return "accepted"


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return bool(a == b)


# --- spec folders ------------------------------------------------------------------------------------

_KEYS = [
    "category",
    "type",
    "user_role",
    "assistant_role",
    "initial_prompt",
    "derivational_prompt",
    "personas_file",
    "er_diagram_path",
    "er_diagram",
    "seed_evolving_directions",
    "generation",
    "model",
    "raters",
    "personas",
    "1",
    "null",
]
_NASTY = [
    "/etc/passwd",
    "../x",
    "~/.ssh/id_rsa",
    "/dev/zero",
    "/dev/urandom",
    "a" * 300,
    "\x1b[2J",
    "\x0c",
    '"\\ud800"',
    "{{ 'A' * 300000000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "*a",
    "&a [1]",
    "{{ scene }}",
    "%s %s",
    "!!python/object:os.system",
    "[" * 300,
    "link",
    "loop",
    "fifo",
]


def spec_strategy() -> Any:
    """(setup.yaml text, diagram text or None) of a spec folder someone else wrote."""
    from hypothesis import strategies as st

    from fountain.spec.scaffold import DIAGRAM, SETUP_YAML

    value = st.one_of(st.sampled_from(_NASTY), st.text(max_size=60), st.integers().map(str))
    line = st.one_of(
        st.builds(lambda k, v: f"{k}: {v}", st.sampled_from(_KEYS), value),
        st.builds(lambda k, v: f"  {k}: {v}", st.sampled_from(_KEYS + ["max_turns", "base_url"]), value),
        st.text(max_size=60),
    )
    valid = SETUP_YAML.format(folder="spec", user_role="CUSTOMER", assistant_role="MECHANIC")
    base = st.sampled_from([valid, valid, ""])
    setup = st.builds(lambda b, lines: b + "\n".join(lines) + "\n", base, st.lists(line, max_size=4))
    diagram = st.one_of(
        st.just(DIAGRAM),
        st.builds(lambda extra: DIAGRAM + extra, st.text(max_size=60)),
        st.none(),
        st.just("erDiagram\n  A ||--o{ B : has\n"),
        st.text(max_size=200),
        st.builds(lambda n: "%%{" * n, st.integers(min_value=1, max_value=50_000)),
        st.builds(lambda n: "erDiagram\n" + "A ||--o{ B : x\n" * n, st.integers(min_value=1, max_value=300)),
    )
    return st.tuples(setup, diagram)


def spec_outcome(folder: Path, setup: str, diagram: str | None) -> str:
    """Write the spec folder (with a link, a symlink loop and a FIFO beside it) and load it."""
    import os

    from fountain.spec.load import load_spec

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "setup.yaml").write_text(setup, encoding="utf-8", errors="surrogatepass")
    if diagram is not None:
        (folder / "diagram.mermaid").write_text(diagram, encoding="utf-8", errors="surrogatepass")
    for name, make in (
        ("link", lambda p: p.symlink_to("/etc/hostname")),
        ("loop", lambda p: p.symlink_to(p)),
        ("fifo", lambda p: os.mkfifo(p)),
    ):
        target = folder / name
        if not target.exists() and not target.is_symlink():
            try:
                make(target)
            except OSError:
                pass
    try:
        spec = load_spec(folder)
    except FountainError as error:
        if not str(error):
            raise AssertionError("an error without a message") from error
        return "error"
    spec.fingerprint()  # must not crash on anything that loaded
    return "accepted"
