"""check_enrichment on answers that are not JSON."""

from __future__ import annotations

from fountain.generation.enrich import check_enrichment


def test_a_malformed_answer_is_reported_as_not_json() -> None:
    scenario, personas, problems = check_enrichment('{"scenario": ', 2)
    assert (scenario, personas) == ("", [])
    assert len(problems) == 1 and problems[0].startswith("the answer is not JSON (Expecting value")


def test_an_integer_over_the_digit_limit_is_reported_not_raised() -> None:
    # json.loads raises a plain ValueError here (no .msg): it used to escape as an AttributeError.
    scenario, personas, problems = check_enrichment('{"scenario": ' + "1" * 5000 + "}", 2)
    assert (scenario, personas) == ("", [])
    assert len(problems) == 1 and problems[0].startswith("the answer is not JSON (Exceeds the limit")
