"""The mermaid erDiagram parser: features, the to_dict() shape, the graph, notes, describe(), CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fountain.cli import cli, main
from fountain.diagram import (
    MD_PARENT,
    ONE_OR_MORE,
    ONLY_ONE,
    ZERO_OR_MORE,
    ZERO_OR_ONE,
    Attribute,
    Diagram,
    load_diagram,
    parse,
)
from fountain.errors import DiagramError

REPO = Path(__file__).resolve().parents[2]
JANUS = next(
    (
        p / "corpus" / "janus"
        for p in (Path("/work/shared"), REPO.parent / "shared")
        if (p / "corpus" / "janus").is_dir()
    ),
    None,
)

SCENE = """\
erDiagram
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"
    COUNSELOR {
        string name PK "full name"
        int years_of_practice
    }

    %% Start date: 2024-02-14
    %% Frequency: Weekly
    COUNSELEE }o..o| SPOUSE : "is married to"
    %%   Topic: marriage guidance
"""


def rel(diagram: Diagram, index: int = 0) -> dict:
    return diagram.to_dict()["relationships"][index]


def test_scene_to_dict_has_exactly_the_documented_shape():
    data = parse(SCENE).to_dict()
    assert data == {
        "entities": {
            "COUNSELOR": {
                "alias": None,
                "attributes": [
                    {"type": "string", "name": "name", "keys": ["PK"], "comment": "full name"},
                    {"type": "int", "name": "years_of_practice", "keys": None, "comment": None},
                ],
            },
            "COUNSELEE": {"alias": None, "attributes": []},
            "SPOUSE": {"alias": None, "attributes": []},
        },
        "relationships": [
            {
                "left": "COUNSELOR",
                "right": "COUNSELEE",
                "left_cardinality": ONLY_ONE,
                "right_cardinality": ONE_OR_MORE,
                "identifying": True,
                "label": "provides counseling to",
            },
            {
                "left": "COUNSELEE",
                "right": "SPOUSE",
                "left_cardinality": ZERO_OR_MORE,
                "right_cardinality": ZERO_OR_ONE,
                "identifying": False,
                "label": "is married to",
            },
        ],
        "notes": ["Start date: 2024-02-14", "Frequency: Weekly", "Topic: marriage guidance"],
    }
    json.dumps(data)  # plain JSON types only


def test_graph_holds_nodes_with_attributes_and_one_edge_per_relationship():
    diagram = parse(SCENE + "    COUNSELOR ||--o{ COUNSELEE : bills\n")
    graph = diagram.graph
    assert list(graph.nodes) == ["COUNSELOR", "COUNSELEE", "SPOUSE"]
    assert graph.nodes["COUNSELOR"]["alias"] is None
    assert graph.nodes["COUNSELOR"]["attributes"][0] == {
        "type": "string",
        "name": "name",
        "keys": ["PK"],
        "comment": "full name",
    }
    edges = list(graph.edges(data=True))
    assert len(edges) == 3  # a MultiDiGraph keeps both COUNSELOR -> COUNSELEE edges
    assert graph.number_of_edges("COUNSELOR", "COUNSELEE") == 2
    labels = {d["label"] for u, v, d in edges if (u, v) == ("COUNSELOR", "COUNSELEE")}
    assert labels == {"provides counseling to", "bills"}
    spouse = [d for u, v, d in edges if v == "SPOUSE"][0]
    assert spouse["left_cardinality"] == ZERO_OR_MORE and spouse["identifying"] is False
    assert graph.graph["notes"] == diagram.notes
    assert diagram.graph is graph  # built once


def test_entities_records_and_summary():
    diagram = parse(SCENE)
    assert diagram.entities == ["COUNSELOR", "COUNSELEE", "SPOUSE"]
    assert "SPOUSE" in diagram and "NOBODY" not in diagram
    assert diagram.entity("COUNSELOR").attributes[0] == Attribute("string", "name", ("PK",), "full name")
    assert diagram.relationships[1].left == "COUNSELEE" and diagram.relationships[1].line == 10
    with pytest.raises(AttributeError):
        diagram.relationships[0].label = "x"  # frozen
    assert diagram.summary() == {"entities": 3, "relationships": 2, "attributes": 2, "notes": 3}
    assert diagram.text == SCENE


def test_describe_reads_as_plain_text_for_a_prompt():
    text = parse(SCENE).describe()
    assert text.splitlines() == [
        "Entities:",
        '- COUNSELOR: name (string, PK, "full name"); years_of_practice (int)',
        "- COUNSELEE",
        "- SPOUSE",
        "Relationships:",
        "- COUNSELOR provides counseling to COUNSELEE (exactly one COUNSELOR to one or more COUNSELEE)",
        "- COUNSELEE is married to SPOUSE (zero or more COUNSELEE to zero or one SPOUSE; non-identifying)",
        "Notes:",
        "- Start date: 2024-02-14",
        "- Frequency: Weekly",
        "- Topic: marriage guidance",
    ]


@pytest.mark.parametrize(
    "spec, left, right",
    [
        ("||--o{", ONLY_ONE, ZERO_OR_MORE),
        ("|o--o|", ZERO_OR_ONE, ZERO_OR_ONE),
        ("}|--|{", ONE_OR_MORE, ONE_OR_MORE),
        ("}o--||", ZERO_OR_MORE, ONLY_ONE),
        ("u--o{", MD_PARENT, ZERO_OR_MORE),
        ("one or zero to many", ZERO_OR_ONE, ZERO_OR_MORE),
        ("zero or one to one or many", ZERO_OR_ONE, ONE_OR_MORE),
        ("zero or many to only one", ZERO_OR_MORE, ONLY_ONE),
        ("many(0) to many(1)", ZERO_OR_MORE, ONE_OR_MORE),
        ("1+ to 0+", ONE_OR_MORE, ZERO_OR_MORE),
        ("1 to one", ONLY_ONE, ONLY_ONE),
        ("ONE OR MORE  to  Zero Or More", ONE_OR_MORE, ZERO_OR_MORE),
        ("1--one or more", ONLY_ONE, ONE_OR_MORE),
    ],
)
def test_every_cardinality_form(spec, left, right):
    r = rel(parse(f"erDiagram\nA {spec} B : has"))
    assert (r["left_cardinality"], r["right_cardinality"]) == (left, right)


@pytest.mark.parametrize(
    "link, identifying",
    [
        ("--", True),
        ("..", False),
        (".-", False),
        ("-.", False),
        (" to ", True),
        (" optionally to ", False),
        (" OPTIONALLY   TO ", False),
    ],
)
def test_identifying_and_non_identifying_links(link, identifying):
    spec = f"||{link}o{{" if link.strip() in ("--", "..", ".-", "-.") else f"one{link}many"
    assert rel(parse(f"erDiagram\nA {spec} B : has"))["identifying"] is identifying


def test_names_quoted_unicode_numeric_and_keyword_like():
    diagram = parse(
        'erDiagram\n"Délivery Ärea ∞" ||--o{ "北京" : x\nDUCK-BILLED_PLATYPUS\n_foo\n'
        "2.5 ||--|| 1 : y\none ||--o{ many : z\nu ||--|| oneway : w\n"
    )
    assert diagram.entities == [
        "Délivery Ärea ∞",
        "北京",
        "DUCK-BILLED_PLATYPUS",
        "_foo",
        "2.5",
        "1",
        "one",
        "many",
        "u",
        "oneway",
    ]
    assert parse("erDiagram\na many to 1 12: label").entities == ["a", "12"]


def test_labels_quoted_unquoted_empty_and_multi_word():
    labels = [
        r.label
        for r in parse(
            'erDiagram\nA ||--o{ B : "is part of"\nA ||--o{ B : places\n'
            'A ||--o{ B : ""\nA ||--o{ B : owns many things   \nA ||--o{ B:"50% off"\n'
        ).relationships
    ]
    assert labels == ["is part of", "places", "", "owns many things", "50% off"]


def test_aliases_classes_and_juxtaposed_statements():
    diagram = parse(
        'erDiagram\nbuzz foo["batman"]\nfoo ||--o| bar : rel\nc[CUSTOMER]:::vip,gold {\n string n\n}\n'
        'foo["later alias is ignored"]\nA:::x ||--o{ B:::y : r\n'
    )
    assert diagram.entities == ["buzz", "foo", "bar", "c", "A", "B"]
    assert diagram.entity("foo").alias == "batman"
    assert diagram.entity("bar").alias is None
    assert diagram.entity("c").alias == "CUSTOMER" and diagram.entity("c").classes == ("vip", "gold")
    assert diagram.entity("c").attributes[0].name == "n"
    assert diagram.entity("A").classes == ("x",) and diagram.entity("B").classes == ("y",)


def test_attribute_blocks_in_full():
    diagram = parse(
        "erDiagram\nBOOK{string title}\nBOOK {\n"
        '  type~T~ generic\n  Map~String, List~int~~ nested\n  string[] readers FK "who"\n'
        '  varchar(5) postal_code "Five digits"\n  string *starred PK,UK , FK\n'
        '  string? alias UK "optional"\n  `my.type` `geo.accuracy`\n  public.geometry(point,4326) loc\n'
        '  string author-ref[name](1)\n  int pk_id pk ""\n  string a string b\n}\nEMPTY {}\n'
    )
    rows = [a.to_dict() for a in diagram.entity("BOOK").attributes]
    assert rows == [
        {"type": "string", "name": "title", "keys": None, "comment": None},
        {"type": "type~T~", "name": "generic", "keys": None, "comment": None},
        {"type": "Map~String, List~int~~", "name": "nested", "keys": None, "comment": None},
        {"type": "string[]", "name": "readers", "keys": ["FK"], "comment": "who"},
        {"type": "varchar(5)", "name": "postal_code", "keys": None, "comment": "Five digits"},
        {"type": "string", "name": "*starred", "keys": ["PK", "UK", "FK"], "comment": None},
        {"type": "string?", "name": "alias", "keys": ["UK"], "comment": "optional"},
        {"type": "my.type", "name": "geo.accuracy", "keys": None, "comment": None},
        {"type": "public.geometry(point,4326)", "name": "loc", "keys": None, "comment": None},
        {"type": "string", "name": "author-ref[name](1)", "keys": None, "comment": None},
        {"type": "int", "name": "pk_id", "keys": ["PK"], "comment": None},
        {"type": "string", "name": "a", "keys": None, "comment": None},
        {"type": "string", "name": "b", "keys": None, "comment": None},
    ]
    assert diagram.entity("EMPTY").attributes == ()


def test_other_mermaid_statements_are_kept_not_errors():
    diagram = parse(
        "erDiagram\n  direction lr\n  accTitle: Orders and customers \n"
        "  accDescr {\n    Customers place\n    orders\n  }\n"
        "  CUSTOMER\n  style CUSTOMER color:red,stroke:blue,fill:#f9f\n"
        "  classDef firstClass,secondClass fill:#f9f, stroke: red\n"
        "  class CUSTOMER, ORDER firstClass, secondClass\n  style CUSTOMER fill:#fff;\n"
    )
    assert diagram.direction == "LR"
    assert diagram.acc_title == "Orders and customers"
    assert diagram.acc_descr == "Customers place\norders"
    assert diagram.styles == {"CUSTOMER": ("color:red", "stroke:blue", "fill:#f9f", "fill:#fff")}
    assert diagram.class_defs == {
        "firstClass": ("fill:#f9f", "stroke: red"),
        "secondClass": ("fill:#f9f", "stroke: red"),
    }
    assert diagram.entity("CUSTOMER").classes == ("firstClass", "secondClass")
    assert diagram.entities == ["CUSTOMER"]  # `class ORDER ...` does not invent an entity
    assert parse("erDiagram\naccDescr: single line description\nA").acc_descr == "single line description"
    # An entity may still be called like a keyword when it is used as one.
    assert parse("erDiagram\nstyle ||--o{ class : x").entities == ["style", "class"]


def test_front_matter_directives_crlf_semicolons_and_indentation():
    text = (
        '\n---\ntitle: "Order example"\nconfig:\n  theme: dark\n---\n%%{init: {"theme": "forest",\n'
        '  "er": {"layoutDirection": "LR"}}}%%\n%% before the header\n   erDiagram\n'
        "\tA ||--o{ B : one; B ||--|{ C : two ;; \n\n   %%{init: {}}%%\n   C\n"
    ).replace("\n", "\r\n")
    diagram = parse(text)
    assert diagram.title == "Order example"
    assert diagram.notes == ["before the header"]
    assert [r.label for r in diagram.relationships] == ["one", "two"]
    assert diagram.entities == ["A", "B", "C"]
    assert diagram.relationships[1].line == 11  # same line as the first, after `;`


def test_notes_keep_their_order_everywhere_and_skip_empty_comments():
    diagram = parse(
        "%% n1\nerDiagram\n%% n2\nBOOK {\n  %% n3 inside a block\n  string t\n}\n  %%\n"
        "accDescr {\n%% n4 inside accDescr\n text\n}\n%%   n5  \n"
    )
    assert diagram.notes == ["n1", "n2", "n3 inside a block", "n4 inside accDescr", "n5"]
    assert diagram.acc_descr == "text"


def test_minimal_diagrams():
    assert parse("erDiagram").entities == []
    assert parse("erDiagram\n").to_dict() == {"entities": {}, "relationships": [], "notes": []}
    assert parse("erDiagram A ||--o{ B : x").entities == ["A", "B"]


def test_body_without_header_when_allowed_and_line_offsets():
    diagram = parse('COUNSELOR ||--|{ COUNSELEE : "provides counseling to"\n%% Topic: x', require_header=False)
    assert diagram.entities == ["COUNSELOR", "COUNSELEE"] and diagram.notes == ["Topic: x"]
    assert parse("erDiagram\nA", require_header=False).entities == ["A"]
    with pytest.raises(DiagramError) as caught:
        parse("A ||--o{ B : x\nA xx B : y", require_header=False, first_line=7, path="setup.yaml")
    assert (caught.value.line, caught.value.column) == (8, 3)
    assert str(caught.value).startswith("setup.yaml:8:3: unknown cardinality `xx`")


@pytest.mark.skipif(JANUS is None, reason="the shared Janus corpus is not beside the checkout")
def test_janus_diagrams_parse():
    for folder in sorted(JANUS.iterdir()):
        diagram = load_diagram(folder)
        assert len(diagram.entities) == 2 and len(diagram.relationships) == 1, folder
        assert diagram.relationships[0].label in ("provides counseling to",)
        assert diagram.notes[0] == "Comments for relationship attributes"


# ---- files and the CLI ---------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_diagram_from_file_folder_and_setup_yaml(tmp_path):
    write(tmp_path, "diagram.mermaid", SCENE)
    assert load_diagram(tmp_path).entities == ["COUNSELOR", "COUNSELEE", "SPOUSE"]
    assert load_diagram(tmp_path / "diagram.mermaid").path == str(tmp_path / "diagram.mermaid")
    inline = tmp_path / "inline"
    inline.mkdir()
    write(inline, "setup.yaml", "category: x\ner_diagram: |\n  TEACHER ||--o{ STUDENT : teaches\n  %% note\n")
    assert load_diagram(inline).notes == ["note"]
    named = tmp_path / "named"
    named.mkdir()
    write(named, "setup.yaml", "er_diagram_path: scene.mmd\n")
    write(named, "scene.mmd", "erDiagram\nX")
    assert load_diagram(named).entities == ["X"]


def test_cli_diagram_tree(tmp_path):
    write(tmp_path, "diagram.mermaid", 'erDiagram\nA["Alpha"] {\n string name PK "who"\n}\nA ||..o{ B : owns\n%% n1\n')
    result = CliRunner().invoke(cli, ["diagram", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    for piece in (
        "entities (2)",
        'A "Alpha"',
        "name string PK",
        "relationships (1)",
        "A owns B",
        "exactly one A to zero or more B, non-identifying",
        "notes (1)",
        "n1",
    ):
        assert piece in out, (piece, out)


def test_cli_diagram_json(tmp_path):
    path = write(tmp_path, "x.mermaid", SCENE)
    result = CliRunner().invoke(cli, ["diagram", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == parse(SCENE).to_dict()


def test_cli_diagram_errors_exit_1_without_traceback(tmp_path, capsys):
    path = write(tmp_path, "bad.mermaid", "erDiagram\nA ||--o{ B : ok\nC xx D : y\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["diagram", str(path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"{path}:3:3: unknown cardinality `xx`" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["diagram", str(tmp_path / "missing.mermaid")])
    assert exit_info.value.code == 1
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["diagram", str(path), "--json"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "unknown cardinality" in captured.err
    with pytest.raises(SystemExit) as exit_info:
        main(["diagram", str(write(tmp_path, "ok.mermaid", SCENE)), "--json"])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["notes"][0] == "Start date: 2024-02-14"


def test_cli_diagram_rejects_binary_and_non_utf8_files(tmp_path, capsys):
    (tmp_path / "bin.mermaid").write_bytes(b"erDiagram\x00\x01\x02")
    (tmp_path / "latin.mermaid").write_bytes("erDiagram\nCAF\u00c9".encode("latin-1"))
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, words in (
        ("bin.mermaid", "binary file"),
        ("latin.mermaid", "not valid UTF-8"),
        ("empty", "no diagram.mermaid"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["diagram", str(tmp_path / target)])
        assert exit_info.value.code == 1
        assert words in capsys.readouterr().err
