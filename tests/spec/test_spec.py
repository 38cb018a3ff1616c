"""Loading specs: Janus compatibility, type resolution, defaults, personas, fingerprint, cross-checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from fountain.errors import SpecError
from fountain.spec.load import (
    CONVERSATION,
    DEFAULT_OUTPUT_FORMATS,
    INSTRUCT,
    GenerationSettings,
    check_spec,
    load_spec,
)
from spec_helpers import DIAGRAM, VALID, load_error, make_spec

JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
needs_janus = pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not available")


@needs_janus
@pytest.mark.parametrize(
    "name,expected_type",
    [
        ("coding_assist", CONVERSATION),
        ("coding_assist_gpt", CONVERSATION),
        ("marriage_counsel", CONVERSATION),
        ("marriage_counsel_instruct", INSTRUCT),
    ],
)
def test_janus_folders_load_unmodified(name, expected_type):
    spec = load_spec(JANUS / name)
    assert spec.type == expected_type
    assert spec.type_source == "slots"
    assert spec.template_style == "legacy"
    assert spec.warnings == ()
    assert spec.diagram_path == JANUS / name / "diagram.mermaid"
    assert spec.user_role in spec.diagram.entities and spec.assistant_role in spec.diagram.entities
    assert spec.seed_directions == ("general", "diverse")
    assert spec.derivational_directions == ("general", "in-depth")
    assert spec.delimiter == "------------------------------"
    # Old specs keep the original behaviour: one seed per direction, one derivation per direction.
    assert spec.generation.seeds_per_direction == 1
    assert spec.generation.derivations_per_direction == 1
    assert spec.planned_seed_calls() == 2


@needs_janus
def test_janus_coding_assist_role_spelled_as_in_its_diagram():
    spec = load_spec(JANUS / "coding_assist")
    assert spec.assistant_role == "SENIOR_DEVELOPR"
    assert spec.diagram.notes[-1].startswith("JUNIOR_DEVELOPER asks")


@needs_janus
def test_type_override_wins_and_is_checked_against_the_slots():
    folder = JANUS / "marriage_counsel_instruct"
    with pytest.raises(SpecError) as info:
        load_spec(folder, type_override="conversation")
    assert any(
        "derivational_prompt: has 7 %s slot(s); the derivational_prompt of the conversation type has 6" in p.message
        for p in info.value.problems
    )
    spec = load_spec(folder, type_override="instruct")
    assert spec.type == INSTRUCT and spec.type_source == "override"


def test_override_beats_the_type_key_with_a_warning(tmp_path):
    folder = make_spec(tmp_path)
    spec = load_spec(folder, type_override="instruct")
    assert spec.type == INSTRUCT
    assert spec.generation.max_turns == 1  # instruct makes single pairs
    assert any("--type says instruct" in w.message for w in spec.warnings)
    assert spec.output_format == DEFAULT_OUTPUT_FORMATS[INSTRUCT]


def test_jinja_spec_without_type_defaults_to_conversation(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID.replace("type: conversation\n", "")))
    assert spec.type == CONVERSATION and spec.type_source == "default"
    assert spec.template_style == "jinja"


def test_defaults_and_new_blocks(tmp_path):
    text = VALID + (
        "  provider: openai\n  name: gpt-4o-mini\n  base_url: http://localhost:8000/v1\n"
        "  api_key_env: MY_KEY\n  max_tokens: 300\n  rpm: 60\n"
        "output:\n  format: sharegpt\n  system_message: Be kind.\n"
        "raters:\n  rater: RF\n  real_data: real.jsonl\n  dedup:\n    minhash_threshold: null\n"
        "privacy:\n  epsilon: 2\n  iterations: 3\n"
        "framework: Filter\n"
    )
    folder = make_spec(tmp_path, text)
    (folder / "real.jsonl").write_text("{}\n")
    spec = load_spec(folder)
    assert spec.generation == GenerationSettings(type=CONVERSATION, max_turns=4)
    assert spec.model.provider == "openai" and spec.model.name == "gpt-4o-mini"
    assert spec.model.api_key_env == "MY_KEY" and spec.model.temperature == 0.7 and spec.model.rpm == 60.0
    assert spec.output.format == "sharegpt" and spec.output.folder == "output"
    assert spec.output.system_message == "Be kind."
    assert spec.raters.rater == "RF" and spec.raters.dedup.minhash_threshold is None
    assert spec.raters.dedup.embedding_threshold == 0.9
    assert spec.privacy.epsilon == 2.0 and spec.privacy.iterations == 3
    assert spec.framework == "Filter"
    # epsilon without PE is allowed but flagged
    assert any("privacy.epsilon" in w.message for w in spec.warnings)
    assert spec.data["category"] == "marriage counsel"
    assert spec.locations["generation.max_turns"] == f"{folder / 'setup.yaml'}:18:14"


def test_empty_blocks_mean_defaults(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID + "output:\nprivacy:\n"))
    assert spec.output.format == "messages" and spec.privacy.iterations == 1


def test_planned_calls(tmp_path):
    text = VALID.replace(
        "  seeds_per_direction: 1", "  seeds_per_direction: 3\n  derivations_per_direction: 2\n  max_prefix_turns: 2"
    )
    text = text.replace("  - general\n", "  - general\n  - humorous\n")
    spec = load_spec(make_spec(tmp_path, text))
    assert spec.planned_seed_calls() == 6
    assert spec.prefix_limit == 2
    assert spec.max_derivation_calls() == 6 * 2 * 1 * 2
    assert spec.max_derivation_calls(accepted_seeds=1) == 4


def test_inline_personas_multiply_seed_calls(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID + "personas:\n  - a nurse\n  - a pilot\n"))
    assert spec.personas == ("a nurse", "a pilot")
    assert spec.planned_seed_calls() == 2


def test_personas_file_text_and_jsonl(tmp_path):
    folder = make_spec(tmp_path, VALID + "personas_file: people.txt\n")
    (folder / "people.txt").write_text("# comment\na nurse\n\n  a pilot  \n")
    spec = load_spec(folder)
    assert spec.personas == ("a nurse", "a pilot") and spec.personas_path == folder / "people.txt"
    folder = make_spec(tmp_path, VALID + "personas_file: people.jsonl\n", name="jsonl")
    (folder / "people.jsonl").write_text('{"persona": "a chef", "id": 1}\n\n{"persona": "a farmer"}\n')
    assert load_spec(folder).personas == ("a chef", "a farmer")


def test_inline_diagram_without_header_and_diagram_path(tmp_path):
    body = 'COUNSELOR ||--|{ COUNSELEE : "provides counseling to"\n%% Topic: marriage guidance\n'
    text = VALID + "er_diagram: |\n" + "".join(f"  {line}\n" for line in body.splitlines())
    spec = load_spec(make_spec(tmp_path, text, diagram=None))
    assert spec.diagram_path is None
    assert spec.diagram_text.startswith("erDiagram\n")
    assert spec.diagram.notes == ["Topic: marriage guidance"]
    folder = make_spec(tmp_path, VALID + "er_diagram_path: scenes/main.mmd\n", diagram=None, name="bypath")
    (folder / "scenes").mkdir()
    (folder / "scenes" / "main.mmd").write_text(DIAGRAM)
    spec = load_spec(folder)
    assert spec.diagram_path == folder / "scenes" / "main.mmd"
    assert set(spec.diagram.entities) == {"COUNSELOR", "COUNSELEE"}


def test_free_text_role_is_a_warning(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID.replace("user_role: COUNSELEE", "user_role: a worried spouse")))
    warning = next(w for w in spec.warnings if w.message.startswith("user_role:"))
    assert "used as free text" in warning.message
    assert warning.location == f"{tmp_path / 'spec' / 'setup.yaml'}:3:12"


def test_role_spelled_in_words_matches_its_entity_with_a_warning(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID.replace("user_role: COUNSELEE", "user_role: counselee")))
    assert any("taken as the entity COUNSELEE" in w.message for w in spec.warnings)


def test_snake_case_role_must_be_an_entity(tmp_path):
    error = load_error(make_spec(tmp_path, VALID.replace("user_role: COUNSELEE", "user_role: counsel_ee")))
    assert "user_role: counsel_ee is not an entity of the diagram" in str(error)


def test_jinja_prompt_without_direction_is_warned(tmp_path):
    text = VALID.replace("  {{ direction_instructions }}\nderiv", "\nderiv")
    spec = load_spec(make_spec(tmp_path, text))
    assert any("initial_prompt: uses none of direction, direction_instructions" in w.message for w in spec.warnings)


def test_check_spec_runs_the_cross_checks_on_a_built_spec(tmp_path):
    from dataclasses import replace

    spec = load_spec(make_spec(tmp_path))
    assert check_spec(spec) == []
    broken = replace(spec, assistant_role="COUNSELLOR")
    with pytest.raises(SpecError) as info:
        check_spec(broken)
    assert "did you mean COUNSELOR?" in info.value.problems[0].hint
    runtime = replace(spec, initial_prompt="{{ entities[7] }} {{ direction }}")
    with pytest.raises(SpecError) as info:
        check_spec(runtime)
    assert "initial_prompt" in str(info.value)


@pytest.mark.parametrize("name", ["marriage_counsel", "tech_support", "language_tutoring"])
def test_samples_validate_without_warnings(name):
    spec = load_spec(SAMPLES / name)
    assert spec.warnings == ()
    assert spec.template_style == "jinja"
    assert spec.planned_seed_calls() <= 4 and spec.max_derivation_calls() <= 8  # small for the 135M default
    assert spec.diagram_path == SAMPLES / name / "diagram.mermaid"


def test_marriage_counsel_sample_is_richer_than_the_original():
    spec = load_spec(SAMPLES / "marriage_counsel")
    summary = spec.diagram.summary()
    assert summary["relationships"] >= 2 and summary["attributes"] >= 3 and summary["notes"] >= 2


# --- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_ignores_comments_key_order_and_explicit_defaults(tmp_path):
    base = load_spec(make_spec(tmp_path, VALID, name="a")).fingerprint()
    lines = VALID.split("model:")
    reordered = "model:" + lines[1] + "# a comment\n" + lines[0]
    assert load_spec(make_spec(tmp_path, reordered, name="b")).fingerprint() == base
    explicit = VALID + "  concurrency: 8\n  rpm: 100\noutput:\n  folder: elsewhere\n  format: janus\n"
    explicit = explicit.replace("  seeds_per_direction: 1", "  seeds_per_direction: 1\n  derivations_per_direction: 1")
    assert load_spec(make_spec(tmp_path, explicit, name="c")).fingerprint() == base


def test_fingerprint_changes_with_data_relevant_fields(tmp_path):
    spec = load_spec(make_spec(tmp_path, VALID, name="a"))
    changed_prompt = load_spec(make_spec(tmp_path, VALID.replace("Continue:", "Go on:"), name="b"))
    assert changed_prompt.fingerprint() != spec.fingerprint()
    changed = [k for k, v in changed_prompt.fingerprint_fields().items() if spec.fingerprint_fields()[k] != v]
    assert changed == ["derivational_prompt"]
    changed_turns = load_spec(make_spec(tmp_path, VALID.replace("max_turns: 4", "max_turns: 5"), name="c"))
    assert [k for k, v in changed_turns.fingerprint_fields().items() if spec.fingerprint_fields()[k] != v] == [
        "generation.max_turns"
    ]
    changed_notes = load_spec(make_spec(tmp_path, VALID, DIAGRAM.replace("marriage", "family"), name="d"))
    assert changed_notes.fingerprint() != spec.fingerprint()


def test_fingerprint_fields_are_json_and_stable():
    import json

    spec = load_spec(SAMPLES / "marriage_counsel")
    fields = spec.fingerprint_fields()
    json.dumps(fields)
    assert fields["generation.max_turns"] == 4
    assert spec.fingerprint() == load_spec(SAMPLES / "marriage_counsel").fingerprint()
    assert len(spec.fingerprint()) == 64


def test_the_setup_schema_is_a_valid_draft_2020_12_schema():
    # Checked here once instead of at every start of fountain (spec.schema_errors.schema_validator).
    from jsonschema import Draft202012Validator

    from fountain.resources import load_schema

    Draft202012Validator.check_schema(load_schema("setup.schema.json"))
