"""Guards for untrusted input and output: bounded file reads, and text made safe to show or store.

Core module (no fountain imports beyond errors). Everything a spec folder names is read through
:func:`read_limited` (regular files only, at most :data:`MAX_FILE_BYTES`); every text that came
from a server or a spec goes through :func:`redact` and :func:`escape_controls` before it reaches
a terminal or a file (:func:`safe_text` does both).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from fountain.errors import Problem

MAX_FILE_BYTES = 16 * 1024 * 1024  # setup.yaml, a diagram, a personas file: kilobytes in practice


class FileProblem(Exception):
    """A file could not be read as text; carries the one problem to report."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def read_limited(path: Path, what: str, where: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), or raise FileProblem.

    Refuses, with the reason: a missing file, a symlink loop, a name too long, a directory, a
    FIFO or device, an unreadable file, a file larger than ``limit`` (the limit in the message).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise FileProblem(_open_problem(path, what, where, error)) from None
    except ValueError:  # a name the file system cannot hold: a lone surrogate, a NUL byte
        raise FileProblem(
            Problem(
                f"{what} {safe_text(str(path))!r} is not a usable file name",
                where,
                f"{what} must name a plain text file by a printable name",
            )
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileProblem(
                Problem(f"{what} {path} is a directory, not a file", where, f"{what} must be a plain text file")
            )
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "a device or special file"
            raise FileProblem(
                Problem(f"{what} {path} is {kind}, not a regular file", where, f"{what} must be a plain text file")
            )
        if info.st_size > limit:
            raise FileProblem(_too_large(path, what, where, limit))
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise FileProblem(_too_large(path, what, where, limit))
        return b"".join(chunks)
    except OSError as error:
        raise FileProblem(_open_problem(path, what, where, error)) from None
    finally:
        os.close(fd)


def _too_large(path: Path, what: str, where: str, limit: int) -> Problem:
    return Problem(
        f"{what} {path} is larger than the limit of {limit // (1024 * 1024)} MiB",
        where,
        f"a {what} is text of a few kilobytes; check that the path names the right file",
    )


def _open_problem(path: Path, what: str, where: str, error: OSError) -> Problem:
    if error.errno == errno.ENOENT:
        return Problem(f"{what} not found: {path}", where)
    if error.errno == errno.ELOOP:
        return Problem(
            f"{what} {path} is a symbolic link that loops (it points back to itself)",
            where,
            "replace the link with the file itself",
        )
    if error.errno == errno.ENAMETOOLONG:
        return Problem(f"{what}: the file name is too long for this system ({len(str(path)):,} characters)", where)
    if error.errno in (errno.EACCES, errno.EPERM):
        return Problem(
            f"cannot read {what} {path}: permission denied", where, f"make it readable, e.g. chmod u+r {path}"
        )
    if error.errno == errno.EISDIR:
        return Problem(f"{what} {path} is a directory, not a file", where, f"{what} must be a plain text file")
    return Problem(f"cannot read {what} {path}: {error.strerror or error}", where)


# --- text from servers and specs ---------------------------------------------------------------------

# Things that look like credentials: bearer tokens, OpenAI/Anthropic-style keys (sk-..., sk-ant-...),
# Google API keys (AIza...), GitHub tokens (ghp_..., github_pat_...), Hugging Face tokens (hf_...).
_SECRET_SHAPES = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|rk|pk)-[A-Za-z0-9_-]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{16,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{16,}"
    r"|\bhf_[A-Za-z0-9]{16,}"
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}"
)
REDACTED = "[redacted]"
# Environment variables whose values are secrets wherever they appear.
_SECRET_ENV = re.compile(r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_MIN_SECRET_CHARS = 8  # shorter values ("1", "true") would redact ordinary words


def _secret_values() -> list[str]:
    values = {
        value.strip()
        for name, value in os.environ.items()
        if _SECRET_ENV.search(name) and len(value.strip()) >= _MIN_SECRET_CHARS
    }
    return sorted(values, key=len, reverse=True)  # longest first: a key containing another


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every secret replaced by ``[redacted]``: the values of the environment's
    key/token variables (or ``secrets``) and anything shaped like a bearer token or an API key."""
    if not text:
        return text
    for value in _secret_values() if secrets is None else secrets:
        if value and value in text:
            text = text.replace(value, REDACTED)
    return _SECRET_SHAPES.sub(REDACTED, text)


# C0 controls except tab and newline, DEL, C1 controls (CSI, OSC...), and the bidi overrides that
# can reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``): an answer or a spec cannot
    clear the screen, change the title or plant a hyperlink in the user's terminal."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group(0))
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    text = _CONTROLS.sub(escape, text)
    return text if keep_newlines else text.replace("\n", "\\n")


def safe_text(text: str) -> str:
    """:func:`redact` and :func:`escape_controls`: what every message shown or stored goes through."""
    return escape_controls(redact(text))
