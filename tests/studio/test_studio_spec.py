"""The spec page's API: the check of unsaved text (as `fountain validate`), the rendered prompts
and the plan (as `fountain render` and `--dry-run`), and Save."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install 'fountain[studio]')")

from starlette.testclient import TestClient  # noqa: E402

from fountain.errors import SpecError  # noqa: E402
from fountain.spec.load import load_spec  # noqa: E402
from fountain.studio.app import create_app  # noqa: E402
from studio_helpers import copy_sample  # noqa: E402

LOCAL = "http://127.0.0.1:8765"
ORIGIN = {"origin": LOCAL}


@pytest.fixture
def folder(tmp_path) -> Path:
    return copy_sample(tmp_path)


@pytest.fixture
def client(folder) -> TestClient:
    return TestClient(create_app([folder], token="t"), base_url=LOCAL)


def _texts(folder: Path) -> dict[str, str]:
    return {n: (folder / n).read_text(encoding="utf-8") for n in ("setup.yaml", "diagram.mermaid")}


def test_a_valid_spec_gets_its_prompts_and_plan(client, folder):
    result = client.post("/api/folders/0/check?provider=openai", json=_texts(folder), headers=ORIGIN).json()
    assert result["ok"] and result["problems"] == []
    assert result["mode"] == "json"
    assert [p["title"].split()[0] for p in result["prompts"]] == ["seed", "derivation"]
    assert "a COUNSELEE (the user) and a COUNSELOR" in result["prompts"][0]["messages"][-1]["content"]
    spec = load_spec(folder)
    assert result["plan"]["seed_conversations"] == len(spec.seed_directions) * spec.generation.seeds_per_direction
    assert result["plan"]["provider"] == "openai"


def test_a_yaml_error_is_located_in_the_users_file_and_nothing_is_written(client, folder):
    texts = _texts(folder)
    broken = {**texts, "setup.yaml": texts["setup.yaml"].replace("user_role: COUNSELEE", "user_role: [COUNSELEE")}
    result = client.post("/api/folders/0/check", json=broken, headers=ORIGIN).json()
    with pytest.raises(SpecError) as cli_error:  # the same error `fountain validate` gives
        tmp = folder.parent / "copy"
        tmp.mkdir()
        (tmp / "setup.yaml").write_text(broken["setup.yaml"])
        (tmp / "diagram.mermaid").write_text(texts["diagram.mermaid"])
        load_spec(tmp)
    assert not result["ok"]
    [problem] = result["problems"]
    assert problem["location"] == f"{folder}/setup.yaml:8:15"
    assert problem["message"] == cli_error.value.message
    assert problem["hint"] == cli_error.value.hint
    assert _texts(folder) == texts


def test_a_diagram_error_and_a_role_missing_from_it_are_reported_with_hints(client, folder):
    texts = _texts(folder)
    bad = {**texts, "diagram.mermaid": texts["diagram.mermaid"].replace("COUNSELEE {", "COUNSELEE {{", 1)}
    result = client.post("/api/folders/0/check", json=bad, headers=ORIGIN).json()
    assert not result["ok"]
    assert any("diagram.mermaid" in (p["location"] or "") for p in result["problems"])
    renamed = {**texts, "setup.yaml": texts["setup.yaml"].replace("user_role: COUNSELEE", "user_role: CLIENT")}
    result = client.post("/api/folders/0/check", json=renamed, headers=ORIGIN).json()
    assert not result["ok"]
    assert any("CLIENT" in p["message"] and p["hint"] for p in result["problems"])


def test_save_writes_the_two_files_and_nothing_else(client, folder):
    before = sorted(p.name for p in folder.iterdir())
    texts = {"setup.yaml": "category: x\n", "diagram.mermaid": "erDiagram\n    A ||--o{ B : has\n"}
    assert client.post("/api/folders/0/save", json=texts, headers=ORIGIN).json() == {
        "saved": ["setup.yaml", "diagram.mermaid"]
    }
    assert _texts(folder) == texts
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_request_without_both_texts_is_refused(client, folder):
    response = client.post("/api/folders/0/save", json={"setup.yaml": "x"}, headers=ORIGIN)
    assert response.status_code == 400
    assert "diagram.mermaid" in response.json()["error"]
    response = client.post("/api/folders/0/check", content=b"not json", headers=ORIGIN)
    assert response.status_code == 400
