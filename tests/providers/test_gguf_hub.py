"""``--model hf://owner/repo/file.gguf`` for the local provider: read from the Hugging Face cache,
downloaded when online, a clear error offline."""

from __future__ import annotations

import pytest

from fountain.bundled import ModelFileError
from fountain.providers.gguf_hub import split_hub_name
from fountain.providers.local import resolve_model


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_hub_name_splits_into_repository_and_file():
    assert split_hub_name("hf://owner/repo/sub/model.Q4.gguf") == ("owner/repo", "sub/model.Q4.gguf")
    with pytest.raises(ModelFileError) as info:
        split_hub_name("hf://owner/model.gguf")
    assert "hf://OWNER/REPO/FILE.gguf" in info.value.hint


def test_a_cached_hub_model_resolves_offline(hf_cache):
    snapshot = hf_cache / "models--owner--repo" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "tiny.gguf").write_bytes(b"GGUF" + b"\0" * 16)
    (hf_cache / "models--owner--repo" / "refs").mkdir()
    (hf_cache / "models--owner--repo" / "refs" / "main").write_text("abc123")
    path, sha = resolve_model("hf://owner/repo/tiny.gguf")
    assert path == snapshot / "tiny.gguf" and sha is None


def test_an_uncached_hub_model_offline_is_a_clear_error(hf_cache):
    with pytest.raises(ModelFileError) as info:
        resolve_model("hf://owner/repo/missing.gguf")
    assert "not in the Hugging Face cache" in info.value.message
    assert "network" in info.value.hint
