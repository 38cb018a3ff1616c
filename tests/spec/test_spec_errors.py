"""Bad specs: every problem is reported with file:line:col, key path and hint; the CLI shows no
traceback and exits with code 1."""

from __future__ import annotations

import pytest

from fountain.errors import DiagramError, SpecError
from spec_helpers import (
    DIAGRAM,
    VALID,
    find_problem,
    load_error,
    make_spec,
    position,
    problems_of,
    run_cli,
)


def where(folder, text, needle, occurrence=1, file="setup.yaml"):
    line, column = position(text, needle, occurrence)
    return f"{folder / file}:{line}:{column}"


def assert_cli(folder, capsys, *expected):
    code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert code == 1
    assert "Traceback" not in output
    for text in expected:
        assert text in output, output
    return output


def test_misspelled_top_level_key_suggests_the_right_one(tmp_path, capsys):
    text = VALID.replace("category:", "catgory:")
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    unknown = find_problem(error, "catgory: unknown key")
    assert unknown.location == where(folder, text, "catgory")
    assert "did you mean `category`" in unknown.hint
    missing = find_problem(error, "category: required key is missing")
    assert missing.location == f"{folder / 'setup.yaml'}:1:1"
    assert_cli(folder, capsys, "catgory: unknown key", unknown.location, "did you mean `category`")


def test_misspelled_nested_key(tmp_path, capsys):
    text = VALID.replace("  max_turns: 4", "  max_turn: 4")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "generation.max_turn: unknown key")
    assert problem.location == where(folder, text, "max_turn:")
    assert "did you mean `max_turns`" in problem.hint
    assert_cli(folder, capsys, "generation.max_turn", problem.location)


def test_top_level_key_that_belongs_in_a_block(tmp_path, capsys):
    text = VALID + "top_p: 0.9\n"
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "top_p: unknown key")
    assert problem.location == where(folder, text, "top_p:")
    assert "inside the `model:` block" in problem.hint
    assert_cli(folder, capsys, problem.location, "model:")


def test_enum_value_lists_the_allowed_values(tmp_path, capsys):
    text = VALID.replace("type: conversation", "type: convo")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "type: 'convo' is not an allowed value")
    assert problem.location == where(folder, text, "convo")
    assert "conversation, instruct" in problem.hint
    assert_cli(folder, capsys, problem.location, "allowed: conversation, instruct")


def test_nested_enum_case_insensitive_suggestion(tmp_path, capsys):
    text = VALID + "raters:\n  rater: pe\n  real_data: real.jsonl\n"
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "raters.rater: 'pe' is not an allowed value")
    assert problem.location == where(folder, text, "pe\n")
    assert problem.hint.startswith("did you mean PE?")
    assert_cli(folder, capsys, problem.location, "raters.rater")


def test_wrong_type_names_the_expected_type(tmp_path, capsys):
    text = VALID.replace("max_turns: 4", 'max_turns: "four"')
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "generation.max_turns: expected an integer, got text")
    assert problem.location == where(folder, text, '"four"')
    assert_cli(folder, capsys, problem.location, "expected an integer")


def test_yaml_boolean_where_text_is_expected_hints_quotes(tmp_path, capsys):
    text = VALID.replace("category: marriage counsel", "category: yes")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "category: expected text, got the boolean true")
    assert problem.location == where(folder, text, "yes")
    assert "put it in quotes" in problem.hint
    assert_cli(folder, capsys, problem.location, "quotes")


def test_number_out_of_range(tmp_path, capsys):
    text = VALID.replace("temperature: 0.7", "temperature: 3.5")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "model.temperature: must be at most 2, got 3.5")
    assert problem.location == where(folder, text, "3.5")
    assert_cli(folder, capsys, problem.location, "model.temperature")


def test_min_turns_above_max_turns(tmp_path, capsys):
    text = VALID.replace("  max_turns: 4", "  min_turns: 6\n  max_turns: 4")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "generation.min_turns: 6 is more than max_turns (4)")
    assert problem.location == where(folder, text, "6")
    assert_cli(folder, capsys, problem.location, "min_turns must be at most max_turns")


def test_literal_api_key_is_refused_without_echoing_it(tmp_path, capsys):
    secret = "sk-test-abcdef1234567890"
    text = VALID + f"  api_key: {secret}\n"
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    problem = find_problem(error, "model.api_key: an API key must not be written in setup.yaml")
    assert problem.location == where(folder, text, "api_key")
    assert "api_key_env" in problem.hint and "environment variable" in problem.hint
    assert secret not in str(error)
    output = assert_cli(folder, capsys, problem.location, "api_key_env")
    assert secret not in output


def test_api_key_env_holding_a_key_is_not_echoed(tmp_path, capsys):
    secret = "sk-proj-0123456789abcdef"
    text = VALID + f"  api_key_env: {secret}\n"
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    problem = find_problem(error, "model.api_key_env: must be the name of an environment variable")
    assert problem.location == where(folder, text, secret)
    assert secret not in str(error)
    assert secret not in assert_cli(folder, capsys, problem.location)


def test_yaml_syntax_error_points_at_line_and_column(tmp_path, capsys):
    text = VALID.replace("category: marriage counsel", "category: marriage: counsel")
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    assert isinstance(error, SpecError)
    assert "YAML syntax error: mapping values are not allowed here" in error.message
    assert error.location == where(folder, text, ": counsel")
    assert "quotes" in error.hint
    assert "^" in error.message  # the offending line with a caret
    assert_cli(folder, capsys, error.location, "YAML syntax error")


def test_an_unclosed_bracket_hint_names_where_it_opened(tmp_path, capsys):
    text = VALID.replace("category: marriage counsel", "category: [draft marriage counsel")
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    line, column = position(text, "[draft")
    assert f"the [ or {{ at line {line}, column {column} is never closed" in error.hint
    assert "quotes" in error.hint
    assert_cli(folder, capsys, "is never closed")


def test_tab_indentation_gets_a_tab_hint(tmp_path, capsys):
    text = VALID.replace("  seeds_per_direction: 1", "\tseeds_per_direction: 1")
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    line, _ = position(text, "\tseeds_per_direction")
    assert error.location.startswith(f"{folder / 'setup.yaml'}:{line}:")
    assert "tab" in error.hint
    assert_cli(folder, capsys, "tab characters")


def test_unquoted_legacy_prompt_starting_with_percent(tmp_path, capsys):
    text = VALID.replace("initial_prompt: |\n  Write", "initial_prompt: %s Write")
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    assert error.location == where(folder, text, "%s Write")
    assert "cannot start any token" in error.message
    assert "quote the value" in error.hint
    assert_cli(folder, capsys, error.location)


def test_empty_file(tmp_path, capsys):
    folder = make_spec(tmp_path, "")
    error = load_error(folder)
    assert error.message == "setup.yaml is empty"
    assert error.location == str(folder / "setup.yaml")
    assert "fountain init" in error.hint
    assert_cli(folder, capsys, "setup.yaml is empty")


def test_comments_only_file(tmp_path, capsys):
    folder = make_spec(tmp_path, "# category: x\n# user_role: Y\n")
    error = load_error(folder)
    assert "empty (it holds only comments)" in error.message
    assert_cli(folder, capsys, "only comments")


def test_binary_file(tmp_path, capsys):
    folder = make_spec(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    error = load_error(folder)
    assert "binary file" in error.message and "NUL" in error.message
    assert error.location == str(folder / "setup.yaml")
    assert_cli(folder, capsys, "binary file")


def test_invalid_utf8_points_at_the_byte(tmp_path, capsys):
    folder = make_spec(tmp_path, b"category: caf\xe9\nuser_role: X\n")
    error = load_error(folder)
    assert "not valid UTF-8" in error.message and "0xe9" in error.message
    assert error.location == f"{folder / 'setup.yaml'}:1:14"
    assert_cli(folder, capsys, "UTF-8", error.location)


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    import fountain.spec.sourcefile as source_module

    folder = make_spec(tmp_path)

    def deny(path, **_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source_module, "_read_bytes", deny)  # chmod does not stop root
    error = load_error(folder)
    assert "permission denied" in error.message
    assert error.location == str(folder / "setup.yaml")
    assert "chmod" in error.hint
    assert_cli(folder, capsys, "permission denied")


def test_top_level_not_a_mapping(tmp_path, capsys):
    folder = make_spec(tmp_path, "- category: x\n- user_role: Y\n")
    error = load_error(folder)
    assert "top level of setup.yaml must be a mapping" in error.message and "a list" in error.message
    assert error.location == f"{folder / 'setup.yaml'}:1:1"
    assert_cli(folder, capsys, "must be a mapping")


def test_missing_folder(tmp_path, capsys):
    folder = tmp_path / "nope"
    error = load_error(folder)
    assert error.message == f"spec folder not found: {folder}"
    assert "fountain init" in error.hint
    assert_cli(folder, capsys, "spec folder not found")


def test_file_instead_of_folder(tmp_path, capsys):
    folder = make_spec(tmp_path)
    error = load_error(folder / "setup.yaml")
    assert "is a file, not a spec folder" in error.message
    assert f"--target-folder {folder}" in error.hint
    assert_cli(folder / "setup.yaml", capsys, "is a file, not a spec folder")


def test_setup_yaml_is_a_directory(tmp_path, capsys):
    folder = make_spec(tmp_path, None)
    (folder / "setup.yaml").mkdir()
    error = load_error(folder)
    assert "is a directory, not a file" in error.message
    assert error.location == str(folder / "setup.yaml")
    assert_cli(folder, capsys, "is a directory")


def test_missing_setup_yaml_suggests_renaming_setup_yml(tmp_path, capsys):
    folder = make_spec(tmp_path, None)
    (folder / "setup.yml").write_text(VALID)
    error = load_error(folder)
    assert error.message == f"no setup.yaml in {folder}"
    assert "rename setup.yml to setup.yaml" in error.hint
    assert_cli(folder, capsys, "no setup.yaml")


def test_missing_diagram(tmp_path, capsys):
    folder = make_spec(tmp_path, diagram=None)
    error = load_error(folder)
    assert "no diagram" in error.message and "er_diagram_path" in error.message
    assert error.location == str(folder / "setup.yaml")
    assert "diagram.mermaid" in error.hint
    assert_cli(folder, capsys, "no diagram")


def test_er_diagram_path_to_a_missing_file(tmp_path, capsys):
    text = VALID + "er_diagram_path: scene.mermaid\n"
    folder = make_spec(tmp_path, text)
    (folder / "scenes.mermaid").write_text(DIAGRAM)
    problem = find_problem(load_error(folder), "er_diagram_path: diagram file not found")
    assert problem.location == where(folder, text, "scene.mermaid")
    assert "did you mean scenes.mermaid?" in problem.hint
    assert_cli(folder, capsys, problem.location)


def test_diagram_parse_error_points_into_the_diagram_file(tmp_path, capsys):
    broken = DIAGRAM.replace("COUNSELOR ||--|{ COUNSELEE", "COUNSELOR ||--|{{ COUNSELEE")
    folder = make_spec(tmp_path, diagram=broken)
    error = load_error(folder)
    assert isinstance(error, DiagramError)
    line, _ = position(broken, "COUNSELOR ||--|{{")
    assert error.location.startswith(f"{folder / 'diagram.mermaid'}:{line}:")
    assert error.line == line
    assert_cli(folder, capsys, f"diagram.mermaid:{line}:")


def test_inline_diagram_error_points_into_setup_yaml(tmp_path, capsys):
    text = VALID + 'er_diagram: |\n  COUNSELOR ||--|{ COUNSELEE : "provides"\n  COUNSELEE }}--|| X\n'
    folder = make_spec(tmp_path, text, diagram=None)
    error = load_error(folder)
    assert isinstance(error, DiagramError)
    line, _ = position(text, "COUNSELEE }}")
    assert error.location.startswith(f"{folder / 'setup.yaml'}:{line}:")
    assert_cli(folder, capsys, f"setup.yaml:{line}:")


def test_personas_file_missing(tmp_path, capsys):
    text = VALID + "personas_file: people.txt\n"
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "personas_file: personas file not found")
    assert problem.location == where(folder, text, "people.txt")
    assert "relative to the spec folder" in problem.hint
    assert_cli(folder, capsys, problem.location)


def test_bad_jsonl_persona_line(tmp_path, capsys):
    text = VALID + "personas_file: people.jsonl\n"
    folder = make_spec(tmp_path, text)
    (folder / "people.jsonl").write_text('{"persona": "a nurse"}\n{"name": "x"}\n')
    problem = find_problem(load_error(folder), 'line 2 has no "persona" text')
    assert problem.location == f"{folder / 'people.jsonl'}:2:1"
    assert_cli(folder, capsys, problem.location)


def test_role_that_is_not_an_entity(tmp_path, capsys):
    text = VALID.replace("assistant_role: COUNSELOR", "assistant_role: COUNSELLOR")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "assistant_role: COUNSELLOR is not an entity of the diagram")
    assert problem.location == where(folder, text, "COUNSELLOR")
    assert problem.hint.startswith("did you mean COUNSELOR?")
    assert "entities: COUNSELOR, COUNSELEE" in problem.hint
    assert_cli(folder, capsys, problem.location, "did you mean COUNSELOR?")


def test_unknown_template_variable(tmp_path, capsys):
    text = VALID.replace("{{ direction_instructions }}\nderiv", "{{ direction_instruction }}\nderiv")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "initial_prompt: unknown template variable {{ direction_instruction }}")
    assert problem.location == where(folder, text, "{{ direction_instruction }}")
    assert "did you mean {{ direction_instructions }}?" in problem.hint
    assert_cli(folder, capsys, problem.location)


def test_template_syntax_error_names_prompt_and_line(tmp_path, capsys):
    text = VALID.replace("  Continue: {{ conversation_json }}", "  Continue: {{ conversation_json }\n  more")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "derivational_prompt: template syntax error")
    line, _ = position(text, "  Continue:")
    assert problem.location.startswith(f"{folder / 'setup.yaml'}:")
    reported = int(problem.location.split(":")[-2])
    assert reported in (line, line + 1)  # Jinja reports where it noticed the unclosed tag
    assert_cli(folder, capsys, "derivational_prompt: template syntax error")


def test_legacy_slot_count_wrong_for_declared_type(tmp_path, capsys):
    text = VALID.replace(
        "  Write a conversation between {{ user_role }} and {{ assistant_role }}.\n  {{ scene }}\n"
        "  {{ direction_instructions }}\n",
        "  %s\n  %s\n  style %s, roles %s\n",
    ).replace("  Continue: {{ conversation_json }}\n  {{ direction_instructions }}\n", "  %s\n  %s\n  %s\n  %s %s %s\n")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "initial_prompt: has 4 %s slot(s)")
    assert "has 5, filled in this order: diagram, delimiter, direction, user_role, assistant_role" in problem.message
    assert problem.location == where(folder, text, "|", 1)
    assert_cli(folder, capsys, problem.location)


def test_legacy_type_cannot_be_told_apart(tmp_path, capsys):
    text = (
        VALID.replace("type: conversation\n", "")
        .replace(
            "  Write a conversation between {{ user_role }} and {{ assistant_role }}.\n  {{ scene }}\n"
            "  {{ direction_instructions }}\n",
            "  %s %s %s %s %s\n",
        )
        .replace("  Continue: {{ conversation_json }}\n  {{ direction_instructions }}\n", "  %s %s %s %s %s\n")
    )
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "derivational_prompt: cannot tell the type from its 5 %s slot(s)")
    assert "type: instruct" in problem.hint and "--type" in problem.hint
    assert_cli(folder, capsys, problem.location)


def test_prompt_mixing_both_styles(tmp_path, capsys):
    text = VALID.replace("  {{ scene }}\n", "  {{ scene }} %s\n")
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "initial_prompt: mixes positional %s slots with Jinja")
    assert problem.location == where(folder, text, "|", 1)
    assert_cli(folder, capsys, problem.location)


def test_duplicate_key(tmp_path, capsys):
    text = VALID + "category: again\n"
    folder = make_spec(tmp_path, text)
    problem = find_problem(load_error(folder), "category: the key is given twice (line 1 and line")
    assert problem.location == where(folder, text, "category: again")
    assert_cli(folder, capsys, problem.location)


def test_empty_and_duplicated_directions(tmp_path, capsys):
    text = VALID.replace("seed_evolving_directions:\n  - general\n", "seed_evolving_directions: []\n").replace(
        "  - in-depth\n", "  - in-depth\n  - in-depth\n"
    )
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    empty = find_problem(error, "seed_evolving_directions: the list is empty")
    assert empty.location == where(folder, text, "[]")
    dup = find_problem(error, "derivational_evolving_directions: 'in-depth' is listed more than once")
    assert dup.location == where(folder, text, "- in-depth")  # the list starts at its first item
    assert_cli(folder, capsys, empty.location, "listed more than once")


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    text = (
        VALID.replace("catgory", "x")
        .replace("category:", "catgory:")
        .replace("max_turns: 4", "max_turns: 0")
        .replace("temperature: 0.7", "temperature: hot")
    )
    text += "output:\n  format: jsonl\n"
    folder = make_spec(tmp_path, text)
    error = load_error(folder)
    messages = [p.message for p in problems_of(error)]
    assert len(messages) >= 5, messages
    for fragment in (
        "catgory: unknown key",
        "category: required key",
        "generation.max_turns: must be at least 1",
        "model.temperature: expected a number",
        "output.format: 'jsonl' is not an allowed value",
    ):
        assert any(fragment in m for m in messages), (fragment, messages)
    output = assert_cli(folder, capsys, f"{len(messages)} problems in the spec")
    locations = [p.location for p in problems_of(error)]
    assert locations == sorted(locations, key=lambda loc: (int(loc.split(":")[-2]), int(loc.split(":")[-1])))
    assert all(loc in output for loc in locations)


@pytest.mark.parametrize("bad", ["base_url: localhost:8000", "provider: openia"])
def test_model_block_values(tmp_path, capsys, bad):
    text = VALID + f"  {bad}\n"
    folder = make_spec(tmp_path, text)
    key = bad.split(":")[0]
    problem = find_problem(load_error(folder), f"model.{key}:")
    assert problem.location == where(folder, text, bad.split(": ", 1)[1])
    if key == "provider":
        assert "did you mean openai?" in problem.hint
    assert_cli(folder, capsys, problem.location)


def test_cli_subprocess_has_no_traceback(tmp_path):
    import subprocess
    import sys

    folder = make_spec(tmp_path, VALID.replace("type: conversation", "type: convo"))
    result = subprocess.run(
        [sys.executable, "-m", "fountain", "validate", "--target-folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "type: 'convo' is not an allowed value" in result.stderr


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    import time

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    folder = make_spec(tmp_path, "\n".join(lines) + "\npersonas: [*a8]\n")
    start = time.perf_counter()
    error = load_error(folder)
    assert time.perf_counter() - start < 5
    assert "expands to more than" in error.message and "aliases" in error.message
    assert_cli(folder, capsys, "expands to more than")


def test_deeply_nested_yaml(tmp_path, capsys):
    folder = make_spec(tmp_path, "category: " + "[" * 5000 + "]" * 5000 + "\n")
    error = load_error(folder)
    assert "nested too deeply" in error.message
    assert_cli(folder, capsys, "nested too deeply")


@pytest.mark.parametrize(
    "old, new, hint",
    [
        ("max_turns: 4", "max_turns: -3", "max_turns: 1"),
        ("temperature: 0.7", "temperature: 9", "2 is the maximum"),
    ],
)
def test_a_value_out_of_range_gets_a_hint_with_the_bound(tmp_path, capsys, old, new, hint):
    folder = make_spec(tmp_path, VALID.replace(old, new))
    problem = find_problem(load_error(folder), "must be")
    assert problem.hint and hint in problem.hint
    assert "hint:" in assert_cli(folder, capsys, problem.location)
