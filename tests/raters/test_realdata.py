import json

import pytest

from fountain.errors import RealDataError
from fountain.raters.realdata import conversation_key, group_by_category, load_real_data
from fountain.types import Turn

CANARY = "CANARY-7f3e the quick zebra pays rent in turquoise"


def _messages(user, assistant, category="help", system=None):
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": msgs, "metadata": {"category": category, "id": "x"}}


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_messages_jsonl(tmp_path):
    path = _write_jsonl(
        tmp_path / "real.jsonl",
        [
            _messages("hi", "hello", system="be kind"),
            _messages("how are you", "fine", category="chat"),
        ],
    )
    data = load_real_data(path)
    assert [c.line for c in data] == [1, 2]
    assert data[0].turns == (Turn("hi", "hello"),)  # the system message is not a turn
    assert [c.category for c in data] == ["help", "chat"]
    assert set(group_by_category(data)) == {"help", "chat"}


def test_sharegpt_and_janus_records_and_blank_lines(tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text(
        json.dumps(
            {
                "conversations": [
                    {"from": "human", "value": "a"},
                    {"from": "gpt", "value": "b"},
                    {"from": "human", "value": "c"},
                    {"from": "gpt", "value": "d"},
                ],
                "category": "x",
            }
        )
        + "\n\n"
        + json.dumps({"conversations": [{"user": "u", "assistant": "v"}], "category": "y"})
        + "\n",
        encoding="utf-8",
    )
    data = load_real_data(path)
    assert data[0].turns == (Turn("a", "b"), Turn("c", "d"))
    assert data[1].turns == (Turn("u", "v"),) and data[1].line == 3


def test_janus_outputs_json_array_with_line_numbers(tmp_path):
    records = [
        {
            "conversations": [{"user": "q1", "assistant": "a1"}],
            "type": "conversation",
            "category": "coding assist",
            "model": "gemini-1.0-pro",
        },
        {
            "conversations": [{"user": "q2", "assistant": "a2"}, {"user": "q3", "assistant": "a3"}],
            "type": "conversation",
            "category": "coding assist",
            "model": "gemini-1.0-pro",
        },
    ]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    data = load_real_data(path)
    assert len(data) == 2 and data[1].turns[1] == Turn("q3", "a3")
    lines = path.read_text().splitlines()
    assert data[0].line == 2 and lines[data[0].line - 1].strip() == "{"
    assert lines[data[1].line - 1].strip() == "{" and data[1].line > data[0].line


def test_default_category_and_missing_category(tmp_path):
    record = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    path = _write_jsonl(tmp_path / "real.jsonl", [record])
    assert load_real_data(path, default_category="general")[0].category == "general"
    with pytest.raises(RealDataError) as info:
        load_real_data(path)
    assert info.value.location == f"{path}:1" and "category" in info.value.message


@pytest.mark.parametrize(
    "content,needle,line",
    [
        (
            '{"conversations": [{"user": "a", "assistant": "b"}], "category": "c"}\n{"messages": [\n',
            "not valid JSON",
            2,
        ),
        ('{"text": "' + CANARY + '"}\n', "unknown record shape", 1),
        ("[1, 2]\n", "expected a JSON object", 1),
        ('{"messages": [{"role": "user", "content": "a"}], "category": "c"}\n', "no assistant answer", 1),
        ('{"messages": [{"role": "assistant", "content": "a"}], "category": "c"}\n', "without a user", 1),
        ('{"messages": [{"role": "narrator", "content": "' + CANARY + '"}], "category": "c"}\n', "unknown role", 1),
        ('{"conversations": [{"from": "human"}], "category": "c"}\n', "needs 'from' and 'value'", 1),
        ('{"messages": [], "category": "c"}\n', "no turns", 1),
    ],
)
def test_malformed_input_is_located_and_quotes_no_content(tmp_path, content, needle, line):
    path = tmp_path / "real.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RealDataError) as info:
        load_real_data(path)
    assert needle in info.value.message
    assert info.value.location.startswith(f"{path}:{line}")
    assert "CANARY" not in str(info.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(RealDataError, match="empty"):
        load_real_data(empty)
    with pytest.raises(RealDataError, match="not found"):
        load_real_data(tmp_path / "missing.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RealDataError, match="UTF-8"):
        load_real_data(binary)


def test_broken_json_array(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(
        '[\n {"conversations": [{"user": "a", "assistant": "b"}], "category": "c"}\n {"x": 1}\n]', encoding="utf-8"
    )
    with pytest.raises(RealDataError) as info:
        load_real_data(path)
    assert info.value.location == f"{path}:3"


def test_duplicates_are_refused_with_line_numbers_and_no_text(tmp_path):
    path = _write_jsonl(
        tmp_path / "real.jsonl",
        [
            _messages(CANARY, "answer one"),
            _messages("something else", "answer two"),
            # Same record modulo case, punctuation and whitespace: still a duplicate.
            _messages(CANARY.upper() + "!!", "  Answer   one. ", category="other"),
            _messages("something else", "answer two"),
        ],
    )
    with pytest.raises(RealDataError) as info:
        load_real_data(path)
    text = str(info.value)
    assert "line 3 duplicates line 1" in text and "line 4 duplicates line 2" in text
    assert "remove or merge" in info.value.hint
    assert info.value.location == f"{path}:3"
    assert "CANARY" not in text.upper() and "answer" not in text.lower()
    assert len(load_real_data(path, allow_duplicates=True)) == 4


def test_conversation_key_distinguishes_different_conversations():
    assert conversation_key((Turn("Hi!", "Hello."),)) == conversation_key((Turn("hi", "hello"),))
    assert conversation_key((Turn("hi", "hello"),)) != conversation_key((Turn("hi", "goodbye"),))
