"""Prices, cost of usage, user overrides, and the --dry-run estimate."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from fountain.errors import FountainError
from fountain.providers.cost import (
    PRICES_ENV,
    Price,
    PriceTable,
    estimate_run,
    estimate_tokens,
)
from fountain.types import Usage


@pytest.fixture(autouse=True)
def _no_env_prices(monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)


def test_packaged_table_prices_common_models():
    table = PriceTable.load()
    assert table.lookup("openai", "gpt-4o-mini") == Price(0.15, 0.60)
    assert table.lookup("anthropic", "claude-sonnet-4-5") == Price(3.0, 15.0)
    assert table.lookup("gemini", "gemini-2.5-flash") == Price(0.30, 2.50)
    assert table.cost("openai", "gpt-4o", Usage(1_000_000, 100_000)) == pytest.approx(2.5 + 1.0)


def test_local_and_fake_cost_nothing():
    table = PriceTable.load()
    assert table.cost("local", None, Usage(10**6, 10**6)) == 0.0
    assert table.cost("fake", "anything", Usage(5, 5)) == 0.0


def test_snapshots_use_their_base_model_price_and_the_longest_match_wins():
    table = PriceTable.load()
    assert table.lookup("openai", "gpt-4o-mini-2024-07-18") == table.lookup("openai", "gpt-4o-mini")
    assert table.lookup("openai", "gpt-4o-2024-08-06") == table.lookup("openai", "gpt-4o")
    assert table.lookup("anthropic", "claude-sonnet-4-5-20250929") == Price(3.0, 15.0)
    assert table.lookup("anthropic", "claude-3-5-haiku@20241022") == Price(0.80, 4.0)
    assert table.lookup("gemini", "models/gemini-2.5-flash-lite") == Price(0.10, 0.40)
    # A prefix that does not end at a separator is another model, not a snapshot.
    assert table.lookup("openai", "gpt-4offbrand") is None


def test_unknown_model_costs_none_with_one_warning(caplog):
    table = PriceTable.load()
    assert table.cost("openai", "llama3-70b", Usage(10, 10)) is None
    assert table.cost("openai", "llama3-70b", Usage(10, 10)) is None
    assert table.cost("nosuchprovider", "x", Usage(1, 1)) is None
    warnings = [r.message for r in caplog.records if "no price known" in r.message]
    assert len(warnings) == 2 and "llama3-70b" in warnings[0]
    assert ("openai", "llama3-70b") in table.unknown


def test_user_table_overrides_and_extends(tmp_path, monkeypatch):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "_about": "mine",
                "openai": {"gpt-4o-mini": {"input": 9, "output": 9}, "llama3-70b": {"input": 0.5, "output": 0.7}},
            }
        )
    )
    table = PriceTable.load(path)
    assert table.lookup("openai", "gpt-4o-mini") == Price(9.0, 9.0)
    assert table.lookup("openai", "llama3-70b") == Price(0.5, 0.7)
    assert table.lookup("openai", "gpt-4o") == Price(2.5, 10.0)  # untouched entries stay
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert PriceTable.load().lookup("openai", "llama3-70b") == Price(0.5, 0.7)


@pytest.mark.parametrize(
    "content,needle",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object of providers"),
        ('{"openai": {"gpt-x": {"input": "cheap", "output": 1}}}', "bad price for openai/gpt-x"),
        ('{"openai": {"gpt-x": {"input": -1, "output": 1}}}', "bad price"),
        ('{"openai": 3}', "must map model names"),
    ],
)
def test_bad_user_table_is_a_clear_error(tmp_path, content, needle):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(FountainError) as info:
        PriceTable.load(path)
    assert needle in info.value.message
    assert str(path) in info.value.location
    assert info.value.hint


def test_missing_user_table_is_a_clear_error(tmp_path):
    with pytest.raises(FountainError, match="cannot read the price table"):
        PriceTable.load(tmp_path / "nope.json")


def fake_spec(**generation):
    settings = dict(
        type="conversation",
        seeds_per_direction=2,
        derivations_per_direction=1,
        min_turns=2,
        max_turns=4,
        max_prefix_turns=None,
        target=None,
        max_retries=2,
        mode="json",
    )
    settings.update(generation)
    return SimpleNamespace(
        seed_directions=("calm", "angry", "sad"),
        derivational_directions=("deepen", "breadth"),
        personas=(),
        generation=SimpleNamespace(**settings),
        model=SimpleNamespace(max_tokens=None),
        initial_prompt="Write a conversation. " * 20,
        derivational_prompt="Continue it. " * 20,
        diagram_text="erDiagram\n  A ||--o{ B : has\n",
        output_format='{"turns": []}',
        user_role="Client",
        assistant_role="Counselor",
        category="counsel",
        delimiter="###",
        system_prompt=None,
    )


def test_dry_run_counts_are_exact_for_seeds_and_bound_derivations():
    spec = fake_spec()
    seeds, derivations, low, high = estimate_run(spec, PriceTable.load(), "openai", "gpt-4o-mini")
    assert seeds == 3 * 2
    assert derivations == 6 * 4 * 2 * 1  # every seed accepted with 4 turns: 4 prefixes x 2 directions
    assert 0 < low < high
    estimate = estimate_run(spec, PriceTable.load(), "openai", "gpt-4o-mini")
    assert estimate.derivation_calls_min == 6 * 2 * 2
    assert estimate.calls_max == (6 + 48) * 3


def test_dry_run_respects_prefix_cap_instruct_type_and_max_tokens():
    table = PriceTable.load()
    assert estimate_run(fake_spec(max_prefix_turns=2), table, "openai", "gpt-4o").derivation_calls_max == 6 * 2 * 2
    assert estimate_run(fake_spec(type="instruct"), table, "openai", "gpt-4o").derivation_calls_max == 6 * 1 * 2
    spec = fake_spec()
    spec.model.max_tokens = 50
    capped = estimate_run(spec, table, "openai", "gpt-4o")
    assert capped.completion_tokens_high == 50


def test_dry_run_cost_is_none_for_an_unpriced_model_and_zero_for_local():
    table = PriceTable.load()
    estimate = estimate_run(fake_spec(), table, "openai", "my-finetune")
    assert estimate.seed_calls == 6 and estimate.cost_low is None and estimate.cost_high is None
    local = estimate_run(fake_spec(), table, "local", None)
    assert local.cost_low == 0.0 and local.cost_high == 0.0


def test_token_estimate():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd" * 25) == 25
    assert estimate_tokens("abcde") == 2


def test_dry_run_turn_by_turn_counts_two_requests_per_turn():
    table = PriceTable.load()
    estimate = estimate_run(fake_spec(), table, "openai", "gpt-4o-mini", mode="turns")
    assert estimate.seed_conversations == 6 and not estimate.seed_calls_exact
    assert estimate.seed_calls == 6 * 2 * 2  # at least min_turns (2) turns of two requests
    assert estimate.derivation_calls_max == 48 * 2 * 4
    assert estimate.calls_max == (6 * 8 + 48 * 8) * 3


def test_rendered_prompt_sizes_drive_the_cost():
    table = PriceTable.load()
    small = estimate_run(fake_spec(), table, "openai", "gpt-4o", prompt_tokens=(10, 10))
    large = estimate_run(fake_spec(), table, "openai", "gpt-4o", prompt_tokens=(10_000, 10_000))
    assert large.prompt_tokens_per_call == 10_000
    assert large.cost_low > small.cost_low and large.cost_high > small.cost_high


def test_cli_dry_run_calls_no_model_and_prints_calls_and_cost(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from fountain.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a real run would need it; a dry run not
    sample = Path(__file__).resolve().parents[2] / "samples" / "marriage_counsel"
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "run",
                "-t",
                str(sample),
                "--provider",
                "openai",
                "--model",
                "gpt-4o-mini",
                "--dry-run",
                "--budget",
                "2",
                "-o",
                str(out),
            ]
        )
    stdout, stderr = capsys.readouterr()
    assert info.value.code == 0, stderr
    assert "seeds (exact)" in stdout and "derivations (at most)" in stdout
    assert "estimated cost: $" in stdout and "budget $2.00" in stdout
    assert "would start a new run" in stdout
    assert not out.exists()  # nothing written


def test_dry_run_counts_aliased_directions_once():
    """``in-depth`` and ``deepen`` are one prompt, planned once: the dry run counts them once."""
    spec = fake_spec()
    spec.seed_directions = ("calm", "angry", "sad", "Calm")
    spec.derivational_directions = ("deepen", "in-depth", "breadth")
    estimate = estimate_run(spec, PriceTable.load(), "openai", "gpt-4o-mini")
    assert estimate.seed_calls == 3 * 2
    assert estimate.derivation_calls_max == 6 * 4 * 2 * 1
