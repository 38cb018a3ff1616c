"""One process of a :class:`~fountain.generation.validation_pool.ValidationPool`.

``python -m fountain.generation.validation_worker`` reads frames from stdin (a 4-byte big-endian
length, then a pickle): first the run's :class:`~fountain.generation.rules.Rules`, then batches of
answers, each answered on stdout by one frame with the batch's verdicts, after a :data:`READY`
marker (whatever a site hook printed before it is skipped). It ends at the end of its input. Only the run that started it writes to it (pickle is read from that run alone).

A plain module run, not :mod:`multiprocessing`: that would import the parent's ``__main__`` again
in the child (a user's own script), and it needs no more than a pipe.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from collections.abc import Sequence
from typing import IO, Any

from fountain.generation.rules import Accepted, Rejected, Rules
from fountain.generation.validate import validate_completion
from fountain.types import Turn

HEADER = struct.Struct(">I")
# Written first: what a site hook printed at start-up before it is skipped by the reader.
READY = b"\x00fountain-validation-worker-1\x00\n"


def validate_answer(
    rules: Rules, payload: Any, kind: str, prefix: Sequence[Turn], parent: Sequence[Turn], finish_reason: str | None
) -> Accepted | Rejected:
    """One answer's verdict; never raises on model output."""
    try:
        return validate_completion(
            payload, spec_or_rules=rules, kind=kind, prefix=prefix, parent=parent, finish_reason=finish_reason
        )
    except Exception as error:  # noqa: BLE001 - a model's answer must never crash the run
        return Rejected("schema", f"the answer could not be validated: {type(error).__name__}: {error}")


def frame(value: Any) -> bytes:
    """``value`` as one frame."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def _read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def main() -> None:
    # Ctrl-C reaches the whole process group: the run stops its pool itself (no traceback here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = sys.stdin.buffer
    sys.stdout.flush()
    sink = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else written to stdout, from Python or C, goes to stderr
    sys.stdout = sys.stderr
    sink.write(READY)
    sink.flush()
    rules = _read_frame(source)
    if not isinstance(rules, Rules):
        return
    while (items := _read_frame(source)) is not None:
        sink.write(frame([validate_answer(rules, *item) for item in items]))
        sink.flush()


if __name__ == "__main__":
    main()
