"""Templates of only text and {{ variable }} render without Jinja, exactly as Jinja renders them;
every other template still goes to Jinja."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fountain.spec.load import load_spec
from fountain.spec.prompts import TEMPLATE_VARIABLES, _compile
from fountain.spec.sandbox import MAX_OUTPUT_CHARS, render_bounded
from fountain.spec.simple_template import MAX_SIMPLE_OUTPUT_CHARS, render_simple, simple_template

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

VARIABLES = {name: f"<{name}>" for name in TEMPLATE_VARIABLES} | {
    "scenario": "",
    "entities": ["A", "B"],
    "min_turns": 2,
    "conversation": [{"user": "u", "assistant": "a"}],
}
FRAGMENTS = [
    "{{ user_role }}",
    "{{user_role}}",
    "{{\n  scene\n}}",
    "{{ entities }}",
    "{{ min_turns }}",
    "{{ conversation }}",
    "{{- user_role }}",
    "{{ user_role -}}",
    "{{ none }}",
    "{{ true }}",
    "{{ not_a_variable }}",
    "{{ user_role | upper }}",
    "{% if persona %}x{% endif %}",
    "{% if persona %}",
    "{%if scenario%}\n",
    "  {% if persona %}\n",
    "  {% endif %}\n",
    "{% endif %}",
    "{% endif %}\n",
    "{% else %}",
    "{% if not_a_variable %}",
    "{%- if persona %}",
    "\t",
    "{# note #}",
    "{",
    "}",
    "}}",
    "{{",
    "%s",
    "text ",
    "\n",
    "\r\n",
    "  ",
    "Write about {x}.",
]


OTHER_VARIABLES = {**VARIABLES, "persona": "", "scenario": "a rainy day"}


def _jinja(source: str, variables: dict) -> str | None:
    try:
        return render_bounded(_compile(source), variables)
    except Exception:  # noqa: BLE001 - any Jinja failure: the fast path must not claim it
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10))
def test_a_simple_template_renders_as_jinja_renders_it(parts):
    source = "".join(parts)
    simple = simple_template(source, TEMPLATE_VARIABLES)
    if simple is not None:
        for variables in (VARIABLES, OTHER_VARIABLES):
            expected = _jinja(source, variables)
            assert expected is not None, source
            assert render_simple(simple, variables) == expected


def test_the_sample_prompts_are_simple():
    assert simple_template("Write a {{ user_role }} and a {{assistant_role}}.\n", TEMPLATE_VARIABLES) is not None
    assert simple_template("{{ user_role | upper }}", TEMPLATE_VARIABLES) is None
    for folder in ("marriage_counsel", "tech_support", "language_tutoring"):
        spec = load_spec(SAMPLES / folder)
        for text in (spec.initial_prompt, spec.derivational_prompt):
            assert simple_template(text, TEMPLATE_VARIABLES) is not None, (folder, text)


def test_a_long_output_goes_to_jinja():
    assert MAX_SIMPLE_OUTPUT_CHARS <= MAX_OUTPUT_CHARS
    template = simple_template("{{ diagram }}", TEMPLATE_VARIABLES)
    assert template is not None
    assert render_simple(template, {"diagram": "x" * (MAX_SIMPLE_OUTPUT_CHARS + 1)}) is None


def test_rendering_a_simple_prompt_does_not_import_jinja(tmp_path):
    code = (
        "import sys\n"
        "from fountain.spec.load import load_spec\n"
        "from fountain.generation.requests import json_messages\n"
        f"spec = load_spec({str(SAMPLES / 'marriage_counsel')!r})\n"
        "json_messages(spec, 'seed', spec.seed_directions[0])\n"
        "print('jinja2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
