"""The studio's security rules over plain HTTP (starlette's TestClient): host names, the token
off loopback, same-origin for changes, no file outside the opened folders."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install 'fountain[studio]')")

from starlette.testclient import TestClient  # noqa: E402

from fountain.studio.app import create_app  # noqa: E402
from fountain.studio.security import OutsideFolder, inside, is_loopback  # noqa: E402
from studio_helpers import copy_sample  # noqa: E402

TOKEN = "s3cret-token"
LOCAL = "http://127.0.0.1:8765"


@pytest.fixture
def folder(tmp_path) -> Path:
    return copy_sample(tmp_path)


def _client(folder: Path, host: str = "127.0.0.1", base_url: str = LOCAL) -> TestClient:
    return TestClient(create_app([folder], token=TOKEN, host=host), base_url=base_url)


def _texts(folder: Path) -> dict[str, str]:
    return {n: (folder / n).read_text(encoding="utf-8") for n in ("setup.yaml", "diagram.mermaid")}


def test_loopback_reads_need_no_token(folder):
    client = _client(folder)
    assert client.get("/").status_code == 200
    assert client.get("/api/folders/0/spec").json()["setup.yaml"] == (folder / "setup.yaml").read_text()


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "attacker.localhost.example"])
def test_an_unknown_host_name_is_refused_against_dns_rebinding(folder, host):
    response = _client(folder, base_url=f"http://{host}:8765").get("/api/folders/0/spec")
    assert response.status_code == 421


def test_a_change_from_another_origin_is_refused_and_writes_nothing(folder):
    client = _client(folder)
    before = _texts(folder)
    changed = {**before, "setup.yaml": before["setup.yaml"] + "\n# hacked\n"}
    for headers in ({"origin": "http://evil.example"}, {}, {"origin": "http://127.0.0.1:9999"}):
        response = client.post("/api/folders/0/save", json=changed, headers=headers)
        assert response.status_code == 403, headers
    assert client.post("/api/folders/0/run/start", json={"provider": "fake"}).status_code == 403
    assert client.post("/api/folders/0/review", json={"id": "s-1", "decision": "drop"}).status_code == 403
    assert _texts(folder) == before
    assert not (folder / "output").exists()


def test_a_change_from_the_studio_page_or_with_the_token_is_accepted(folder):
    client = _client(folder)
    texts = _texts(folder)
    texts["setup.yaml"] += "\n# edited\n"
    assert client.post("/api/folders/0/save", json=texts, headers={"origin": LOCAL}).status_code == 200
    assert (folder / "setup.yaml").read_text() == texts["setup.yaml"]
    texts["setup.yaml"] += "# again\n"
    assert client.post("/api/folders/0/save", json=texts, headers={"x-fountain-token": TOKEN}).status_code == 200
    assert (folder / "setup.yaml").read_text() == texts["setup.yaml"]


def test_off_loopback_every_request_needs_the_token(folder):
    client = _client(folder, host="0.0.0.0", base_url="http://192.168.1.20:8765")
    assert client.get("/").status_code == 401
    assert client.get("/api/folders/0/spec", headers={"x-fountain-token": "wrong"}).status_code == 401
    assert client.get("/api/folders/0/spec", headers={"x-fountain-token": TOKEN}).status_code == 200
    # ?token= once sets an HttpOnly cookie; the page then works without it.
    first = client.get(f"/?token={TOKEN}")
    assert first.status_code == 200
    assert "HttpOnly" in first.headers["set-cookie"]
    assert client.get("/api/folders/0/spec").status_code == 200


def test_off_loopback_the_token_cookie_alone_does_not_authorise_a_cross_site_change(folder):
    client = _client(folder, host="0.0.0.0", base_url="http://192.168.1.20:8765")
    client.get(f"/?token={TOKEN}")
    before = _texts(folder)
    response = client.post("/api/folders/0/save", json=before, headers={"origin": "http://evil.example"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "output/../../outside.txt", "/etc/passwd"]
)
def test_a_file_outside_the_folder_is_not_served(folder, path):
    (folder.parent / "outside.txt").write_text("secret")
    response = _client(folder).get(f"/api/folders/0/files/{path}")
    assert response.status_code in (403, 404)
    assert "secret" not in response.text and "root:" not in response.text


def test_a_symlink_out_of_the_folder_is_refused(folder):
    (folder.parent / "outside.txt").write_text("secret")
    (folder / "link.txt").symlink_to(folder.parent / "outside.txt")
    response = _client(folder).get("/api/folders/0/files/link.txt")
    assert response.status_code == 403
    assert "secret" not in response.text
    with pytest.raises(OutsideFolder):
        inside(folder, "link.txt")


def test_a_setup_yaml_linked_out_of_the_folder_is_neither_read_nor_overwritten(folder):
    outside = folder.parent / "elsewhere.yaml"
    outside.write_text("secret: 1\n")
    (folder / "setup.yaml").unlink()
    (folder / "setup.yaml").symlink_to(outside)
    client = _client(folder)
    assert client.get("/api/folders/0/spec").status_code == 403
    texts = {"setup.yaml": "category: x\n", "diagram.mermaid": "erDiagram\n"}
    assert client.post("/api/folders/0/save", json=texts, headers={"origin": LOCAL}).status_code == 403
    assert outside.read_text() == "secret: 1\n"


def test_a_file_inside_the_folder_is_served_in_a_sandbox(folder):
    (folder / "page.html").write_text("<script>fetch('/api/folders/0/save')</script>")
    response = _client(folder).get("/api/folders/0/files/page.html")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("sandbox")


def test_only_opened_folders_are_reachable(folder):
    client = _client(folder)
    for index in ("1", "-1", "x"):
        assert client.get(f"/api/folders/{index}/spec").status_code == 400


def test_a_local_model_outside_the_folder_is_refused(folder):
    response = _client(folder).post(
        "/api/folders/0/run/start", json={"provider": "local", "model": "../model.gguf"}, headers={"origin": LOCAL}
    )
    assert response.status_code == 403
    assert not (folder / "output").exists()


@pytest.mark.parametrize(
    "host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)]
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
