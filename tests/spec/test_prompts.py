"""Prompt rendering: legacy positional slots in the original order, Jinja templates in a sandbox."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fountain.errors import TemplateError
from fountain.spec import prompts
from fountain.spec.directions import resolve_direction
from fountain.spec.load import load_spec
from fountain.types import Turn
from spec_helpers import DIAGRAM, VALID, make_spec

JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus"

LEGACY_CONVERSATION = """\
category: test
user_role: COUNSELEE
assistant_role: COUNSELOR
delimiter: "----"
initial_prompt: |
  %s # erDiagram
  %s # delimiter
  style "%s" # direction
  user %s, assistant %s, 100% sure, 5%% off
derivational_prompt: |
  %s # erDiagram
  %s # delimiter
  so far: %s
  style "%s" user %s assistant %s
output_format: |
  FORMAT {"conversations": [...]}
seed_evolving_directions: [diverse]
derivational_evolving_directions: [in-depth]
"""

LEGACY_INSTRUCT = """\
category: test
user_role: COUNSELEE
assistant_role: COUNSELOR
delimiter: "----"
initial_prompt: |
  %s # erDiagram
  %s # delimiter
  pair between user(%s) and assistant(%s). # roles
  style "%s". # direction
derivational_prompt: |
  %s # erDiagram
  %s # delimiter
  %s # example conversation
  %s # delimiter
  another pair between user(%s) and assistant(%s).
  style "%s".
output_format: FORMAT
seed_evolving_directions: [diverse]
derivational_evolving_directions: [in-depth]
"""

DIAGRAM_TEXT = DIAGRAM.rstrip()


def test_legacy_conversation_slot_order(tmp_path):
    spec = load_spec(make_spec(tmp_path, LEGACY_CONVERSATION))
    assert spec.type == "conversation" and spec.template_style == "legacy"
    assert prompts.render_seed_prompt(spec, "diverse") == (
        f"{DIAGRAM_TEXT} # erDiagram\n"
        "---- # delimiter\n"
        'style "diverse" # direction\n'
        "user COUNSELEE, assistant COUNSELOR, 100% sure, 5% off\n"
        "\n"
        'FORMAT {"conversations": [...]}'
    )
    turns = [Turn("Hi", "Hello"), Turn("Help?", "Sure")]
    assert prompts.render_derivation_prompt(spec, "in-depth", turns) == (
        f"{DIAGRAM_TEXT} # erDiagram\n"
        "---- # delimiter\n"
        'so far: {"conversations": [{"user": "Hi", "assistant": "Hello"}, '
        '{"user": "Help?", "assistant": "Sure"}]}\n'
        'style "in-depth" user COUNSELEE assistant COUNSELOR\n'
        "\n"
        'FORMAT {"conversations": [...]}'
    )


def test_legacy_instruct_slot_order(tmp_path):
    spec = load_spec(make_spec(tmp_path, LEGACY_INSTRUCT))
    assert spec.type == "instruct" and spec.type_source == "slots"
    assert prompts.render_seed_prompt(spec, "diverse") == (
        f"{DIAGRAM_TEXT} # erDiagram\n"
        "---- # delimiter\n"
        "pair between user(COUNSELEE) and assistant(COUNSELOR). # roles\n"
        'style "diverse". # direction\n'
        "\n"
        "FORMAT"
    )
    assert prompts.render_derivation_prompt(spec, "general", [Turn("Q", "A")]) == (
        f"{DIAGRAM_TEXT} # erDiagram\n"
        "---- # delimiter\n"
        '{"conversation": {"user": "Q", "assistant": "A"}} # example conversation\n'
        "---- # delimiter\n"
        "another pair between user(COUNSELEE) and assistant(COUNSELOR).\n"
        'style "general".\n'
        "\n"
        "FORMAT"
    )


def test_legacy_persona_and_scenario_are_added_after_the_prompt(tmp_path):
    spec = load_spec(make_spec(tmp_path, LEGACY_INSTRUCT))
    text = prompts.render_seed_prompt(spec, "diverse", persona="a nurse", scenario="It is raining.")
    assert text.endswith('style "diverse". # direction\n\nIt is raining.\nThe user is this person: a nurse\n\nFORMAT')


@pytest.mark.skipif(not JANUS.is_dir(), reason="Janus corpus not available")
def test_janus_prompt_keeps_its_annotations():
    spec = load_spec(JANUS / "marriage_counsel")
    text = prompts.render_seed_prompt(spec, "diverse")
    diagram = (JANUS / "marriage_counsel" / "diagram.mermaid").read_text().rstrip()
    assert text.startswith(diagram + " # erDiagram\n------------------------------ # delimiter\n")
    assert 'The direction or the style of the conversations should be "diverse". # direction' in text
    assert 'The user should play the role of "COUNSELEE" appeared in the erDiagram.' in text
    assert text.endswith('{"conversations":[{"user": text, "assistant": text},...]}.')


def test_fill_legacy_is_strictly_positional():
    assert prompts.fill_legacy("a %s b %% c %d %s", ["1", "2"]) == "a 1 b % c %d 2"
    assert prompts.legacy_slot_count("%%s and %s") == 1
    with pytest.raises(TemplateError) as info:
        prompts.fill_legacy("%s %s", ["x"], key="initial_prompt")
    assert "initial_prompt has 2 %s slot(s) but 1 value(s)" in info.value.message


def test_template_style():
    assert prompts.template_style("x %s y") == "legacy"
    assert prompts.template_style("{{ diagram }} 100%") == "jinja"
    assert prompts.template_style("plain text") == "jinja"


# --- Jinja ----------------------------------------------------------------------------------------


def jinja_spec(tmp_path, initial, derivational="{{ conversation_json }} {{ direction }}", **extra):
    # JSON strings are valid YAML double-quoted scalars (with \n escapes).
    text = VALID.split("initial_prompt:")[0] + (
        f"initial_prompt: {json.dumps(initial)}\nderivational_prompt: {json.dumps(derivational)}\n"
        "seed_evolving_directions: [general]\nderivational_evolving_directions: [deepen]\n"
    )
    for key, value in extra.items():
        text += f"{key}: {json.dumps(value)}\n"
    return load_spec(make_spec(tmp_path, text))


def test_jinja_variables(tmp_path):
    spec = jinja_spec(
        tmp_path,
        "{{ user_role }}|{{ assistant_role }}|{{ category }}|{{ direction }}|"
        "{{ entities | join(',') }}|{{ relations[0].label }}|{{ notes[0] }}|"
        "{{ min_turns }}-{{ max_turns }}|{{ persona }}|{{ delimiter }}",
        output_format="OUT",
    )
    text = prompts.render_seed_prompt(spec, "concretize", persona="a nurse")
    assert text == (
        "COUNSELEE|COUNSELOR|marriage counsel|concretize|COUNSELOR,COUNSELEE|"
        "provides counseling to|Topic: marriage guidance|1-8|a nurse|------------------------------"
        "\n\nOUT"
    )


def test_jinja_direction_instructions_and_conversation(tmp_path):
    spec = jinja_spec(
        tmp_path,
        "{{ direction_instructions }}",
        "{% for t in conversation %}U:{{ t.user }} A:{{ t.assistant }};{% endfor %}{{ conversation | tojson }}",
        output_format="",
    )
    assert prompts.render_seed_prompt(spec, "in-depth") == resolve_direction("deepen").instructions
    text = prompts.render_derivation_prompt(spec, "x", [Turn("it's <b>", "ok & fine")])
    # tojson is plain JSON here (no HTML escaping of ', <, &)
    assert text == 'U:it\'s <b> A:ok & fine;[{"user": "it\'s <b>", "assistant": "ok & fine"}]'


def test_output_format_is_not_appended_twice(tmp_path):
    spec = jinja_spec(tmp_path, "Answer as {{ output_format }} please. {{ direction }}", output_format="JSON!")
    assert prompts.render_seed_prompt(spec, "general") == "Answer as JSON! please. general"
    spec = jinja_spec(tmp_path / "b", "Go {{ direction }}.\n\n\n", output_format="JSON!\n")
    assert prompts.render_seed_prompt(spec, "general") == "Go general.\n\nJSON!"


def test_scene_and_diagram_variables(tmp_path):
    spec = jinja_spec(tmp_path, "{{ diagram }}\n{{ scene }} {{ direction }}", output_format="")
    text = prompts.render_seed_prompt(spec, "general")
    assert text.startswith(DIAGRAM_TEXT + "\n")
    assert spec.diagram.describe() in text


def test_strict_undefined_raises_template_error(tmp_path):
    spec = jinja_spec(tmp_path, "{{ direction }}")
    broken = replace(spec, initial_prompt="{{ direction }} {{ persona.name.first }}")
    with pytest.raises(TemplateError) as info:
        prompts.render_seed_prompt(broken, "general")
    assert info.value.message.startswith("initial_prompt: ")
    assert "has no attribute" in info.value.message or "undefined" in info.value.message
    assert info.value.location == spec.locations["initial_prompt"]
    assert "variables:" in info.value.hint


def test_sandbox_blocks_unsafe_attributes(tmp_path):
    spec = jinja_spec(tmp_path, "{{ direction }}")
    unsafe = replace(spec, initial_prompt="{{ direction.__class__.__mro__ }}")
    with pytest.raises(TemplateError):
        prompts.render_seed_prompt(unsafe, "general")


def test_prompt_variables_names_match_the_exported_set(tmp_path):
    spec = jinja_spec(tmp_path, "{{ direction }}")
    variables = prompts.prompt_variables(spec, "general", [Turn("a", "b")], persona=None, scenario="S")
    assert set(variables) == prompts.TEMPLATE_VARIABLES
    assert variables["persona"] == "" and variables["scenario"] == "S"
    assert variables["conversation"] == [{"user": "a", "assistant": "b"}]


def test_system_prompt_renders_with_variables(tmp_path):
    spec = jinja_spec(tmp_path, "{{ direction }}", system_prompt="You write as {{ assistant_role }}.")
    assert prompts.render_system_prompt(spec, "general") == "You write as COUNSELOR."
    assert prompts.render_system_prompt(replace(spec, system_prompt=None), "general") is None


def test_check_template_reports_unknown_variables_and_syntax():
    issues = prompts.check_template("a\n{{ personna }}", "initial_prompt")
    assert issues[0].message == "initial_prompt: unknown template variable {{ personna }}"
    assert issues[0].line == 2 and "did you mean {{ persona }}" in issues[0].hint
    issues = prompts.check_template("a\nb {% if x %}", "derivational_prompt")
    assert issues[0].message.startswith("derivational_prompt: template syntax error")
    assert issues[0].line is not None
