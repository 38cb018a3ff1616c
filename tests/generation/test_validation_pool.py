"""Validation in worker processes gives the event loop's verdicts, batched, and survives a broken pool."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.validation_pool import (
    InlineValidator,
    ValidationPool,
    auto_processes,
    make_validator,
    validate_answer,
)
from fountain.types import Turn
from spec_helpers import make_spec, run_cli

RULES = Rules(min_turns=1, max_turns=4, roles=("COUNSELEE", "COUNSELOR"))
PREFIX = (Turn("We argue about money every week.", "When do those arguments usually start?"),)


def conversation(i: int) -> dict:
    return {
        "conversations": [
            {
                "user": f"My wife and I argue about money, mostly around payday number {i}.",
                "assistant": f"Let us look at what each of you expects from payday number {i} first.",
            }
        ]
    }


ANSWERS = [
    (json.dumps(conversation(1)), "seed", (), (), "stop"),
    (conversation(2), "seed", (), (), "stop"),  # already parsed JSON
    ('{"conversations": [{"user": "cut', "seed", (), (), "length"),  # truncated
    ("no JSON here at all", "seed", (), (), "stop"),
    (json.dumps({"conversations": []}), "seed", (), (), "stop"),
    (json.dumps(conversation(3)), "derivation", PREFIX, PREFIX, "stop"),
    ("[" * 5000 + "]" * 5000, "seed", (), (), "stop"),  # nests too deeply
    ({"conversations": "not a list"}, "seed", (), (), "stop"),
]


async def warmed(pool):
    """``pool`` once its processes are ready (until then the event loop validates)."""
    pool.start()
    for _ in range(300):
        if pool.ready == getattr(pool, "processes", 0):
            return pool
        await asyncio.sleep(0.05)
    raise AssertionError("the pool's processes did not start")


def verdicts(validator, answers, *, wait=True):
    async def main():
        try:
            if wait and isinstance(validator, ValidationPool):
                await warmed(validator)
            return await asyncio.gather(*(validator(*answer) for answer in answers))
        finally:
            await validator.aclose()

    return asyncio.run(main())


def test_a_pool_gives_the_event_loops_verdicts_for_good_and_bad_answers():
    inline = [validate_answer(RULES, *answer) for answer in ANSWERS]
    assert any(isinstance(v, Accepted) for v in inline) and any(isinstance(v, Rejected) for v in inline)
    pool = ValidationPool(RULES, 2)
    assert verdicts(pool, ANSWERS) == inline
    assert pool.fallbacks == 0 and pool.validated == len(ANSWERS)  # every one in a pool process


def test_many_answers_of_one_tick_each_get_their_own_verdict():
    answers = [(json.dumps(conversation(i)), "seed", (), (), "stop") for i in range(300)]
    pool = ValidationPool(RULES, 2)
    results = verdicts(pool, answers)
    assert pool.validated == len(answers)
    assert [r.turns[0].user for r in results] == [
        a["conversations"][0]["user"] for a in map(json.loads, (x[0] for x in answers))
    ]


def test_a_killed_pool_process_falls_back_to_the_event_loop():
    pool = ValidationPool(RULES, 1)

    async def main():
        first = await (await warmed(pool))(*ANSWERS[0])
        for child in pool._children:  # the pool's own process, started by the first answer
            os.kill(child.pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        rest = await asyncio.gather(*(pool(*answer) for answer in ANSWERS))
        await pool.aclose()
        return first, rest

    first, rest = asyncio.run(main())
    assert isinstance(first, Accepted)
    assert rest == [validate_answer(RULES, *answer) for answer in ANSWERS]
    assert pool.fallbacks == len(ANSWERS)


def test_ctrl_c_is_left_to_the_run_not_its_pool_processes():
    pool = ValidationPool(RULES, 1)

    async def main():
        await (await warmed(pool))(*ANSWERS[0])
        pids = [child.pid for child in pool._children]
        for pid in pids:  # what Ctrl-C does to the process group
            os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.5)
        alive = [child.returncode is None for child in pool._children]
        try:
            return alive, await pool(*ANSWERS[1])
        finally:
            await pool.aclose()

    # As from a terminal: SIGINT handled here, so the process starts with it at its default (a
    # background shell would start everything with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        alive, result = asyncio.run(main())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert alive == [True]
    assert result == validate_answer(RULES, *ANSWERS[1])
    assert pool.fallbacks == 0


def test_a_pool_started_without_an_event_loop_starts_with_the_first_answer():
    pool = ValidationPool(RULES, 1)
    pool.start()  # no running loop: nothing yet
    assert pool._tasks == []

    async def main():
        first = await pool(*ANSWERS[0])  # starts the process; validated here meanwhile
        assert pool._tasks and pool.ready == 0
        await warmed(pool)
        rest = await asyncio.gather(*(pool(*answer) for answer in ANSWERS[1:3]))
        await pool.aclose()
        return [first, *rest]

    assert asyncio.run(main()) == [validate_answer(RULES, *a) for a in ANSWERS[:3]]
    assert len(pool._children) == 1 and pool.fallbacks == 0


def test_processes_end_when_the_pool_closes():
    pool = ValidationPool(RULES, 2)
    verdicts(pool, ANSWERS)
    assert len(pool._children) == 2
    assert all(child.returncode == 0 for child in pool._children)


def test_what_a_site_hook_prints_at_start_up_does_not_corrupt_the_pipe(tmp_path, monkeypatch):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import os, sys\nprint('banner from sitecustomize')\nsys.stdout.flush()\nos.write(1, b'\\x00\\x01raw bytes')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(hooks))
    pool = ValidationPool(RULES, 1)
    assert verdicts(pool, ANSWERS) == [validate_answer(RULES, *a) for a in ANSWERS]
    assert pool.validated == len(ANSWERS) and pool.fallbacks == 0


def test_a_closed_pool_still_validates():
    pool = ValidationPool(RULES, 1)
    pool.close()
    assert pool._tasks == []
    assert verdicts(pool, ANSWERS[:2], wait=False) == [validate_answer(RULES, *a) for a in ANSWERS[:2]]


@pytest.mark.parametrize(
    ("requested", "provider", "mode", "cpus", "expected"),
    [
        (3, "fake", "turns", 1, 3),  # asked for: given
        (0, "openai", "json", 64, 0),
        (None, "openai", "json", 1, 0),  # one core: a process would only take the loop's time
        (None, "openai", "json", 2, 1),
        (None, "openai", "json", 4, 1),
        (None, "anthropic", "json", 8, 2),
        (None, "gemini", "json", 64, 4),
        (None, "openai", "turns", 16, 0),
        (None, "local", "json", 16, 0),
        (None, "fake", "json", 16, 0),
    ],
)
def test_processes_by_default_only_where_cores_are_spare_and_answers_remote(requested, provider, mode, cpus, expected):
    assert auto_processes(requested, provider=provider, mode=mode, cpus=cpus) == expected


def test_no_processes_means_the_event_loop():
    validator = make_validator(RULES, 0, provider="openai", mode="json")
    assert type(validator) is InlineValidator


def test_a_run_with_validation_processes_writes_the_same_dataset(tmp_path, capsys):
    spec = make_spec(tmp_path)
    datasets = []
    for processes in ("0", "2"):
        out = tmp_path / f"out{processes}"
        code, text = run_cli(
            ["run", "-t", str(spec), "--provider", "fake", "--seed", "3", "-o", str(out), "-q",
             "--mode", "json", "--validation-processes", processes],
            capsys,
        )  # fmt: skip
        assert code == 0, text
        datasets.append((out / "dataset.jsonl").read_text(encoding="utf-8"))
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["runs"][-1]["options"]["validation_processes"] == int(processes)
    assert datasets[0] == datasets[1] and datasets[0].count("\n") >= 2


def test_a_users_script_without_a_main_guard_runs_once(tmp_path):
    # multiprocessing's spawn would import the script again in each process (and run it again)
    import subprocess
    import sys

    spec = make_spec(tmp_path)
    marker = tmp_path / "runs.txt"
    script = tmp_path / "my_pipeline.py"
    script.write_text(
        "import fountain\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        f"spec = fountain.load_spec({str(spec)!r})\n"
        f"result = fountain.generate(spec, fountain.RunOptions(provider='fake', seed=1, mode='json', quiet=True,\n"
        f"    output={str(tmp_path / 'out')!r}, validation_processes=2))\n"
        "print(result.dataset_records)\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 2
    assert marker.read_text(encoding="utf-8") == "run\n"
    assert "Traceback" not in done.stderr
