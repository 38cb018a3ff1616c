"""Where the accepted samples of an output folder are: an index into the journals (one small
entry per sample, the recently used ones in memory) and a run result's samples read on demand."""

from __future__ import annotations

import operator
import os
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any, NamedTuple, overload

from fountain import fastjson
from fountain.errors import OutputError
from fountain.generation.plan import SEED
from fountain.run.atomic import AtomicFile
from fountain.run.journal import RecordReader, dumps_record, scan_journal
from fountain.run.outputs import DERIVATIONS, DERIVATIONS_FILE, JOURNALS, REJECTS, REJECTS_FILE, SEEDS, SEEDS_FILE
from fountain.types import Sample


class _Entry(NamedTuple):
    """Where one accepted sample is, and what planning needs without reading it."""

    source: int  # _SEEDS or _DERIVATIONS: the journal holding its line
    offset: int
    length: int
    kind: str
    turns: int
    persona: str | None
    canonical: bool  # the line is exactly dumps_record(sample.to_record()) + newline


class SampleIndex(Mapping[str, Sample]):
    """The accepted samples of an output folder by id, read back from their journals on demand.

    Holds one small :class:`_Entry` per sample instead of the sample, plus the most recently added
    or read ones (a seed is read again by each of its derivation tasks).
    """

    RECENT = 2048

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._recent: OrderedDict[str, Sample] = OrderedDict()
        self.reader: RecordReader | None = None

    def add(
        self, sample: Sample, source: int, offset: int, length: int, *, canonical: bool = True, remember: bool = True
    ) -> None:
        self._entries[sample.id] = _Entry(
            source, offset, length, sample.provenance.kind, len(sample.turns), sample.provenance.persona, canonical
        )
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
            raise OutputError(
                f"{JOURNALS[entry.source]} changed under a running fountain: byte "
                f"{entry.offset} holds {sample.id!r}, not {sample_id!r}",
                location=str(self.reader.paths[entry.source]),
                hint="do not edit the journals while a run writes them; run the same command again to resume",
            )
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

    def load_journals(self, output_dir: Path, rejects: dict[str, tuple[Any, int, int]]) -> list[str]:
        """Index the journals a previous session left in ``output_dir`` (streamed: one record in
        memory at a time); the rejects go into ``rejects`` (id -> reason, offset, length). Returns
        the warnings of torn or repaired lines."""
        warnings: list[str] = []
        for source, name in ((SEEDS, SEEDS_FILE), (DERIVATIONS, DERIVATIONS_FILE)):
            scan = scan_journal(output_dir / name)
            for number, (offset, raw, record) in enumerate(scan, 1):
                try:
                    sample = Sample.from_record(record)
                except (KeyError, TypeError, ValueError) as error:
                    raise OutputError(
                        f"{name} record {number} is not a sample ({error})",
                        location=f"{output_dir / name}:{number}",
                        hint="the file was edited or damaged; fix or remove that "
                        "record, or write to another folder with --output",
                    ) from None
                if sample.id in self:
                    continue  # the first record of an id wins
                canonical = raw == (dumps_record(sample.to_record()) + "\n").encode("utf-8")
                self.add(sample, source, offset, len(raw), canonical=canonical, remember=False)
            if scan.warning:
                warnings.append(scan.warning)
        scan = scan_journal(output_dir / REJECTS_FILE)
        for offset, raw, record in scan:
            if isinstance(record.get("id"), str):
                rejects[record["id"]] = (record.get("reason"), offset, len(raw))
        if scan.warning:
            warnings.append(scan.warning)
        return warnings

    def rewrite_journals(
        self, output_dir: Path, rejects: dict[str, tuple[Any, int, int]], sort_key: Callable[[str], Any]
    ) -> tuple[list[tuple[Path, array[int]]], list[str], list[str], list[str]]:
        """Rewrite the journals in plan order (``sort_key``): the new files are written next to the
        old ones, each line copied from where the index says it is, then the old files are closed
        and replaced. Returns each samples journal's path and line offsets (the file's size
        appended), and the seed, derivation and reject ids in their new order."""
        samples = self
        reader = samples.reader
        assert reader is not None
        ordered = sorted(samples, key=sort_key)
        seeds = [i for i in ordered if samples.entry(i).kind == SEED]
        derivations = [i for i in ordered if samples.entry(i).kind != SEED]
        del ordered
        rejects_sorted = sorted((i for i in rejects if i not in samples), key=sort_key)
        with (
            AtomicFile(output_dir / SEEDS_FILE) as new_seeds,
            AtomicFile(output_dir / DERIVATIONS_FILE) as new_derivations,
            AtomicFile(output_dir / REJECTS_FILE) as new_rejects,
        ):
            parts = []
            for out, ids in ((new_seeds, seeds), (new_derivations, derivations)):
                offsets = array("q", (out.write(samples.line(i)) for i in ids))
                offsets.append(out.size)
                parts.append((out.path, offsets))
            for sample_id in rejects_sorted:
                new_rejects.write(dumps_record(reader.record(REJECTS, *rejects[sample_id][1:])) + "\n")
            reader.close()  # the old files are replaced now (and Windows cannot replace open files)
            for out in (new_seeds, new_derivations, new_rejects):
                out.commit()
        return parts, seeds, derivations, rejects_sorted


class ResultSamples(SequenceABC[Sample]):
    """:attr:`RunResult.samples` of an engine run: the dataset's samples in order, read from the
    journals the run rewrote (seeds, then derivations) when asked for, so a large run's result
    does not hold every conversation in memory. Once another run rewrites those journals, reading
    raises :class:`~fountain.errors.OutputError` (read the journals again instead)."""

    def __init__(self, parts: Sequence[tuple[Path, array[int]]]):
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
            raise OutputError(
                f"{path.name} was rewritten after this run ended (another run in the folder?)",
                location=str(path),
                hint="read the output folder again (fountain.run.journal.read_journal) instead "
                "of an old RunResult's samples",
            )

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
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
        for line in self.lines():
            yield Sample.from_record(fastjson.loads_exact(line))

    def lines(self) -> Iterator[bytes]:
        """The samples' journal lines, in order, as they are on disk. The end of the round wrote
        them canonical: each is exactly ``dumps_record(sample.to_record())`` and a newline."""
        for path, offsets, identity in self._parts:
            if len(offsets) <= 1:
                continue
            self._check(path, identity)
            with open(path, "rb") as handle:
                yield from handle

    def __repr__(self) -> str:
        return f"<ResultSamples: {self._len} samples in {', '.join(p.name for p, _, _ in self._parts)}>"
