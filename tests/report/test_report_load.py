"""read_records_file on a JSONL line that is not JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from fountain.report.load import ReportError, read_records_file


def test_a_malformed_line_is_a_report_error(tmp_path: Path) -> None:
    path = tmp_path / "dataset.jsonl"
    path.write_text('{"messages": [\n{"messages": []}\n', encoding="utf-8")
    with pytest.raises(ReportError, match=r"line 1 is not valid JSON \(Expecting"):
        read_records_file(path)


def test_an_integer_over_the_digit_limit_is_a_report_error(tmp_path: Path) -> None:
    # json.loads raises a plain ValueError here (no .msg): it used to escape as an AttributeError.
    path = tmp_path / "dataset.jsonl"
    path.write_text('{"n": ' + "1" * 5000 + '}\n{"messages": []}\n', encoding="utf-8")
    with pytest.raises(ReportError, match=r"line 1 is not valid JSON \(Exceeds the limit"):
        read_records_file(path)
