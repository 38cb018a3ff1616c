"""Append-only JSONL journals: durable appends, torn last lines, damaged files."""

from __future__ import annotations

import json

import pytest

from fountain.errors import OutputError
from fountain.run.atomic import write_jsonl_atomic
from fountain.run.journal import Journal, read_journal


def test_append_and_read_back(tmp_path):
    path = tmp_path / "seeds.jsonl"
    with Journal(path) as journal:
        for i in range(3):
            journal.append({"id": f"s-{i}", "text": "naïve ünïcode"})
    data = path.read_bytes()
    assert data.count(b"\n") == 3 and data.endswith(b"\n")
    found = read_journal(path)
    assert [r["id"] for r in found] == ["s-0", "s-1", "s-2"]
    assert found.torn == 0 and found.warning is None
    assert found.records[0]["text"] == "naïve ünïcode"


def test_missing_file_reads_empty(tmp_path):
    found = read_journal(tmp_path / "nothing.jsonl")
    assert found.records == [] and found.torn == 0


@pytest.mark.parametrize("tail", [b'{"id": "s-2", "te', b'{"id": "s-2"}', b"garbage\n"])
def test_torn_last_line_is_dropped_and_cut(tmp_path, tail):
    path = tmp_path / "seeds.jsonl"
    good = b'{"id": "s-0"}\n{"id": "s-1"}\n'
    path.write_bytes(good + tail)
    found = read_journal(path)
    assert [r["id"] for r in found] == ["s-0", "s-1"]
    assert found.torn == 1 and "torn" in found.warning
    assert path.read_bytes() == good  # repaired: the next append starts on a clean line
    with Journal(path) as journal:
        journal.append({"id": "s-2"})
    assert [r["id"] for r in read_journal(path)] == ["s-0", "s-1", "s-2"]


def test_repair_can_be_disabled(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id"')
    found = read_journal(path, repair=False)
    assert found.torn == 1 and path.read_bytes().endswith(b'{"id"')


def test_damage_in_the_middle_is_an_error_with_file_and_line(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_bytes(b'{"id": "s-0"}\nnot json\n{"id": "s-2"}\n')
    with pytest.raises(OutputError) as info:
        read_journal(path)
    assert info.value.location == f"{path}:2"
    assert path.read_bytes().count(b"\n") == 3  # nothing was cut


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1}\n\n{"id": 2}\n')
    assert [r["id"] for r in read_journal(path)] == [1, 2]


def test_each_record_is_one_write(tmp_path, monkeypatch):
    import os

    calls = []
    real_write = os.write

    def spy(fd, data):
        calls.append(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    with Journal(tmp_path / "x.jsonl", fsync=False) as journal:
        journal.append({"id": "a", "n": [1, 2, 3]})
    assert len(calls) == 1 and calls[0].endswith(b"\n")
    assert json.loads(calls[0]) == {"id": "a", "n": [1, 2, 3]}


def test_write_jsonl_atomic_replaces(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("old\n")
    write_jsonl_atomic(path, [{"a": 1}, {"b": 2}])
    assert path.read_text().splitlines() == ['{"a":1}', '{"b":2}']
    assert not list(tmp_path.glob(".*.tmp"))
