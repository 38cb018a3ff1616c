"""A spec folder from a stranger's repository: every hostile input is a located error, and no file
outside the spec folder is read unless the user allows it (--allow-path)."""

from __future__ import annotations

import os
import time

import pytest

from fountain.spec.load import load_spec
from spec_helpers import VALID, find_problem, load_error, make_spec, run_cli


def _with(folder, extra: str):
    (folder / "setup.yaml").write_text(VALID + extra, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.txt", "~/.bashrc", "sub/../../secret.txt"])
def test_a_personas_file_outside_the_folder_is_refused(tmp_path, name):
    (tmp_path / "secret.txt").write_text("the secret\n")
    folder = _with(make_spec(tmp_path), f"personas_file: {name}\n")
    problem = find_problem(load_error(folder), "personas_file")
    assert "outside the spec folder" in problem.message or "home folder" in problem.message
    assert problem.location.startswith(str(folder / "setup.yaml") + ":")


def test_a_symlink_out_of_the_folder_is_refused_and_allow_path_permits_it(tmp_path):
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "people.txt").write_text("a retired teacher\n")
    folder = _with(make_spec(tmp_path), "personas_file: people.txt\n")
    (folder / "people.txt").symlink_to(outside / "people.txt")
    problem = find_problem(load_error(folder), "personas_file")
    assert "resolves to" in problem.message and "--allow-path" in problem.hint
    spec = load_spec(folder, allow_paths=[outside])
    assert spec.personas == ("a retired teacher",)


def test_a_diagram_path_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "other.mermaid").write_text("erDiagram\n A ||--o{ B : x\n")
    text = VALID + "er_diagram_path: ../other.mermaid\n"
    folder = make_spec(tmp_path, text, diagram=None)
    assert "outside the spec folder" in find_problem(load_error(folder), "er_diagram_path").message


def test_real_data_outside_the_folder_is_refused(tmp_path):
    folder = _with(make_spec(tmp_path), "raters:\n  real_data: /etc/hostname\n")
    assert "outside the spec folder" in find_problem(load_error(folder), "raters.real_data").message


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_even_when_allowed(tmp_path, device):
    folder = _with(make_spec(tmp_path), f"personas_file: {device}\n")
    started = time.monotonic()
    problem = find_problem(load_error(folder, allow_paths=["/dev"]), "not a regular file")
    assert "device" in problem.message and time.monotonic() - started < 5


def test_a_fifo_diagram_does_not_block(tmp_path):
    folder = make_spec(tmp_path, diagram=None)
    os.mkfifo(folder / "diagram.mermaid")
    started = time.monotonic()
    error = load_error(folder)
    assert "FIFO" in str(error) and time.monotonic() - started < 5


def test_a_file_over_the_size_limit_names_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("fountain.safety.MAX_FILE_BYTES", 1024)
    monkeypatch.setattr("fountain.spec.sourcefile.read_limited", _limited(1024))
    folder = _with(make_spec(tmp_path), "personas_file: people.txt\n")
    (folder / "people.txt").write_text("a teacher\n" * 500)
    problem = find_problem(load_error(folder), "limit")
    assert "larger than the limit of" in problem.message


def _limited(limit):
    from fountain.safety import read_limited

    return lambda path, what, where: read_limited(path, what, where, limit)


def test_a_self_looping_symlink_is_reported_as_a_loop(tmp_path):
    folder = make_spec(tmp_path, diagram=None)
    (folder / "diagram.mermaid").symlink_to(folder / "diagram.mermaid")
    assert "loops" in str(load_error(folder))


def test_a_path_longer_than_255_characters_is_a_located_error(tmp_path, capsys):
    folder = _with(make_spec(tmp_path), f"personas_file: {'a' * 300}.txt\n")
    problem = find_problem(load_error(folder), "longer than 255 bytes")
    assert problem.location.startswith(str(folder / "setup.yaml"))
    code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert code == 1 and "Traceback" not in output


@pytest.mark.parametrize(("char", "code"), [("\x1b", "U+001B"), ("\x0c", "U+000C")])
def test_a_control_character_in_setup_yaml_is_a_located_error(tmp_path, capsys, char, code):
    folder = make_spec(tmp_path, VALID.replace("marriage counsel", f"marriage{char}counsel"))
    error = load_error(folder)
    assert code in error.message and error.location == f"{folder / 'setup.yaml'}:1:19"
    exit_code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert exit_code == 1 and "Traceback" not in output and "\x1b" not in output


@pytest.mark.parametrize("key", ["1", "null", "true", "3.5"])
def test_a_non_string_key_inside_a_block_is_a_located_error(tmp_path, capsys, key):
    folder = make_spec(tmp_path, VALID.replace("  max_turns: 4\n", f"  max_turns: 4\n  {key}: 2\n"))
    problem = find_problem(load_error(folder), "not a name")
    assert problem.location.startswith(str(folder / "setup.yaml") + ":")
    exit_code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert exit_code == 1 and "Traceback" not in output


@pytest.mark.parametrize("name", ["\\ud800", "a\\x00b.txt"])
def test_a_file_name_the_file_system_cannot_hold_is_a_located_error(tmp_path, capsys, name):
    # found by tests/spec/test_spec_fuzz.py: os.open raised UnicodeEncodeError / ValueError
    folder = _with(make_spec(tmp_path), f'personas_file: "{name}"\n')
    problem = find_problem(load_error(folder), "not a usable file name")
    assert problem.location.startswith(str(folder / "setup.yaml"))
    code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert code == 1 and "Traceback" not in output


def test_a_lone_surrogate_in_category_is_a_located_error(tmp_path):
    folder = make_spec(tmp_path, VALID.replace("category: marriage counsel", 'category: "a \\ud800 b"'))
    problem = find_problem(load_error(folder), "surrogate")
    assert problem.location == f"{folder / 'setup.yaml'}:1:11"


def test_many_plain_keys_are_not_an_alias_bomb(tmp_path, monkeypatch):
    # 300k plain keys were refused as an alias bomb; the same with the limit scaled down (fast).
    monkeypatch.setattr("fountain.spec.sourcefile._MAX_VALUES", 2_000)
    keys = "".join(f"  k{i}: v\n" for i in range(1_500))
    folder = make_spec(tmp_path, VALID + "extra_block:\n" + keys)
    error = load_error(folder)
    assert "alias" not in str(error)


def test_an_alias_bomb_is_still_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("fountain.spec.sourcefile._MAX_VALUES", 2_000)
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for name, prev in zip("bcdefg", "abcdef"):
        bomb += f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
    folder = make_spec(tmp_path, VALID + bomb)
    assert "aliases" in str(load_error(folder))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'A' * 300000000 }}", "limit is 1,000,000"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "range()"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}", "loops more than"),
        ("{{ 'A' | center(300000000) }}", "center"),
        ("{{ '%300000000s' % 'a' }}", "format width"),
        ("{{ '{:>300000000}'.format(1) }}", "format width"),
        ("{{ 2 ** 100000000 }}", "exponents"),
    ],
)
def test_a_resource_hungry_template_is_a_located_error_in_seconds(tmp_path, capsys, template, expected):
    folder = make_spec(tmp_path, VALID.replace("  {{ scene }}\n", f"  {{{{ scene }}}}\n  {template}\n", 1))
    started = time.monotonic()
    error = load_error(folder)
    assert expected in str(error) and time.monotonic() - started < 10
    assert error.location.startswith(str(folder / "setup.yaml") + ":")
    code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert code == 1 and "Traceback" not in output


def test_ordinary_loops_and_filters_still_render(tmp_path):
    template = "{% for i in range(3) %}{{ i }}{% endfor %} {{ range(5) | length }} {{ 'ab' * 3 }} {{ 'x' | center(9) }}"
    folder = make_spec(tmp_path, VALID.replace("  {{ scene }}\n", f"  {{{{ scene }}}}\n  {template}\n", 1))
    from fountain.spec.prompts import render_seed_prompt

    spec = load_spec(folder)
    assert "012 5 ababab     x    " in render_seed_prompt(spec, spec.seed_directions[0])


@pytest.mark.parametrize("key", ["er_diagram_path", "raters.real_data"])
def test_a_name_longer_than_255_bytes_in_any_file_key_is_a_located_error(tmp_path, capsys, key):
    name = "b" * 300 + ".txt"
    extra = f"er_diagram_path: {name}\n" if key == "er_diagram_path" else f"raters:\n  real_data: {name}\n"
    folder = _with(make_spec(tmp_path), extra)
    problem = find_problem(load_error(folder), "longer than 255 bytes")
    assert problem.location.startswith(str(folder / "setup.yaml") + ":")
    code, output = run_cli(["validate", "--target-folder", str(folder)], capsys)
    assert code == 1 and "Traceback" not in output
