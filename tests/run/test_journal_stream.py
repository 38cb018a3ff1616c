"""Journals by position and in streams: group commit, reading back, streamed rewrite and export."""

from __future__ import annotations

import errno
import json
import os
import threading
import time

import pytest

from fountain.errors import OutputError
from fountain.run.atomic import AtomicFile, write_lines_atomic
from fountain.run.export import export_dataset
from fountain.run.journal import (
    Journal,
    RecordReader,
    dumps_record,
    read_journal,
    read_record,
    scan_journal,
)
from fountain.types import Provenance, Sample, Turn, Usage


def _wait_for(condition, seconds: float = 10.0) -> None:
    """Liveness, not timing: wait until a background thread did something (fails after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the background thread never did it"
        time.sleep(0.005)


@pytest.fixture
def fsyncs(monkeypatch):
    calls: list[int] = []
    real = os.fsync
    lock = threading.Lock()

    def spy(fd):
        with lock:
            calls.append(fd)
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_append_returns_the_position_that_reads_the_record_back(tmp_path):
    path = tmp_path / "seeds.jsonl"
    records = [{"id": f"s-{i}", "text": "naïve " * i} for i in range(5)]
    with Journal(path, fsync=False) as journal:
        positions = [journal.append(r) for r in records]
        assert [journal.read(*p) for p in positions] == records
    data = path.read_bytes()
    for (offset, length), record in zip(positions, records):
        assert data[offset : offset + length] == (dumps_record(record) + "\n").encode("utf-8")
        assert read_record(path, offset, length) == record
    # appending to an existing file continues after its end
    with Journal(path, fsync=False) as journal:
        offset, length = journal.append({"id": "s-5"})
    assert offset == len(data) and read_record(path, offset, length) == {"id": "s-5"}


def test_a_wrong_position_is_an_error_not_a_wrong_record(tmp_path):
    path = tmp_path / "seeds.jsonl"
    with Journal(path, fsync=False) as journal:
        offset, length = journal.append({"id": "a"})
    with pytest.raises(OutputError):
        read_record(path, offset + 1, length - 1)  # not a whole line: not JSON
    with pytest.raises(OutputError):
        read_record(path, offset, length + 5)  # past the end


def test_group_commit_fsyncs_in_the_background_and_close_syncs_the_rest(tmp_path, fsyncs):
    with Journal(tmp_path / "x.jsonl", sync_interval=60.0) as journal:
        journal.append({"n": 0})
        _wait_for(lambda: len(fsyncs) == 1)  # the background thread synced the first line
        for n in range(1, 50):
            journal.append({"n": n})  # within the interval: they wait for the next group
        assert len(fsyncs) == 1
    assert len(fsyncs) == 2  # close() synced the other 49 lines at once
    assert [r["n"] for r in read_journal(tmp_path / "x.jsonl")] == list(range(50))


def test_sync_makes_everything_durable_now(tmp_path, fsyncs):
    journal = Journal(tmp_path / "x.jsonl", sync_interval=60.0)
    journal.sync()
    assert fsyncs == []  # nothing appended, nothing to sync
    journal.append({"a": 1})
    journal.sync()
    assert journal._fd in fsyncs
    journal.close()


def test_without_fsync_nothing_is_synced(tmp_path, fsyncs):
    with Journal(tmp_path / "x.jsonl", fsync=False) as journal:
        for n in range(10):
            journal.append({"n": n})
    assert fsyncs == []


def test_a_failed_background_fsync_stops_the_next_append(tmp_path, monkeypatch):
    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    journal = Journal(tmp_path / "x.jsonl")
    journal.append({"n": 0})
    _wait_for(lambda: journal._syncer is not None and journal._syncer.error is not None)
    with pytest.raises(OutputError) as info:
        journal.append({"n": 1})
    assert "Input/output error" in info.value.message and info.value.hint
    journal.close()  # does not raise: the engine's final rewrite fsyncs (and reports) again


def test_scan_streams_lines_with_their_bytes_and_repairs_a_torn_tail(tmp_path):
    path = tmp_path / "seeds.jsonl"
    good = b'{"id": "s-0"}\n\n{"id": "s-1"}\n'
    path.write_bytes(good + b'{"id": "s-2", "te')
    scan = scan_journal(path)
    lines = list(scan)
    assert [(line.offset, line.raw, line.record) for line in lines] == [
        (0, b'{"id": "s-0"}\n', {"id": "s-0"}),
        (15, b'{"id": "s-1"}\n', {"id": "s-1"}),
    ]
    assert scan.torn == 1 and "torn" in scan.warning and scan.count == 2
    assert path.read_bytes() == good
    with pytest.raises(RuntimeError):
        list(scan)  # one pass only
    assert list(scan_journal(tmp_path / "missing.jsonl")) == []


def test_the_reader_reads_by_position_and_opens_a_file_that_appears_later(tmp_path):
    path = tmp_path / "seeds.jsonl"
    with Journal(path, fsync=False) as journal:
        first = journal.append({"id": "a"})
        second = journal.append({"id": "b"})
    with RecordReader([path, tmp_path / "not-yet.jsonl"]) as reader:
        assert reader.record(0, *second) == {"id": "b"} and reader.line(0, *first) == b'{"id":"a"}\n'
        (tmp_path / "not-yet.jsonl").write_bytes(b'{"id": "late"}\n')
        assert reader.record(1, 0, 15) == {"id": "late"}
        with pytest.raises(OutputError):
            reader.record(0, second[0], second[1] + 1)  # past the end


def test_atomic_files_are_replaced_on_commit_only(tmp_path):
    old = tmp_path / "seeds.jsonl"
    old.write_bytes(b"old\n")
    with AtomicFile(old) as first, AtomicFile(tmp_path / "new.jsonl") as second:
        assert first.write(b"a\n") == 0 and first.write("bé\n") == 2 and first.size == 6
        second.write(b"x\n")
        assert old.read_bytes() == b"old\n"  # nothing replaced before the commits
        first.commit()
        second.commit()
    assert old.read_bytes() == "a\nbé\n".encode() and (tmp_path / "new.jsonl").read_bytes() == b"x\n"
    with pytest.raises(ZeroDivisionError), AtomicFile(old) as failed:
        failed.write(b"half\n")
        raise ZeroDivisionError
    assert old.read_bytes() == "a\nbé\n".encode()  # an error leaves the old file
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_lines_atomic_reports_positions(tmp_path):
    seen = []
    path = write_lines_atomic(
        tmp_path / "d.jsonl", [b"a\n", "bé\n", b"c\n"], sink=lambda offset, length: seen.append((offset, length))
    )
    assert path.read_bytes() == "a\nbé\nc\n".encode()
    assert seen == [(0, 2), (2, 4), (6, 2)]
    assert not list(tmp_path.glob(".*.tmp"))


def _samples() -> list[Sample]:
    def sample(i: int, system: str | None = None, kind: str = "seed") -> Sample:
        turns = (Turn(f"héllo {i}\nthere", 'she said "no"'), Turn("second", "answer"))[: i % 2 + 1]
        return Sample(
            f"s{i}",
            turns,
            Provenance(
                kind=kind,
                direction="general",
                category="c",
                model="m",
                usage=Usage(3, 4),
                persona="Ana" if i == 1 else None,
            ),
            system=system,
        )

    return [
        sample(0),
        sample(1, kind="derivation"),
        sample(2, system="Own system."),
        sample(3),
        Sample("empty", (), Provenance(kind="seed", direction="d", category="c")),
    ]


def test_janus_export_is_the_original_indented_list(tmp_path):
    from fountain.run.export import janus_record

    for samples in ([], _samples()[:1], _samples()):
        path = export_dataset(samples, tmp_path, "janus")
        assert (
            path.read_text(encoding="utf-8")
            == json.dumps([janus_record(s) for s in samples], ensure_ascii=False, indent=2) + "\n"
        )
