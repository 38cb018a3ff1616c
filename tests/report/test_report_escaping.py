"""Text a report shows (stop reasons, reject reasons, names) came from a server, a model or a spec:
it reaches the terminal with its control characters escaped."""

from __future__ import annotations

from fountain.report.terminal import escape


def test_escape_sequences_are_shown_not_sent():
    shown = escape("stopped: \x1b]0;pwned\x07\x1b[2J [bold]x[/]")
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b]0;pwned\\x07" in shown
    assert "\\[bold]" in shown  # rich markup escaped as before


def test_ordinary_text_is_unchanged():
    assert escape("dedup: 3 duplicates\nnext line") == "dedup: 3 duplicates\nnext line"
