import math

import numpy as np
import pytest

from fountain.raters.dedup import DedupSettings, dedup, normalize_text, shingles

# Second turns of the conversations below (long enough to be realistic multi-turn samples).
FOLLOW_UPS = [
    " User: We tried that once but it ended in another fight about his car payments. "
    "Assistant: Then let us slow it down. Pick one small category, groceries for example, "
    "and agree on a number for a single month. When the month ends, look at it together "
    "without blame. Success on something small builds the confidence you need for the bigger "
    "conversations about savings and debt.",
    " User: She says I never take her family seriously. Assistant: That feeling of not being "
    "taken seriously can matter more than the move itself. You might ask her to describe a "
    "moment when she felt dismissed, and simply reflect it back before defending yourself. "
    "People soften when they feel heard, and the decision about where to live becomes a "
    "shared problem rather than a contest.",
    " User: I am scared that if I bring it up he will say everything is fine. Assistant: "
    "That fear makes sense. You could start with your own experience rather than his "
    "behaviour, for instance saying that you miss him and want to feel close again. An "
    "invitation is easier to accept than a complaint, and it leaves room for him to share "
    "what he has been missing too.",
    " User: What if the answer is something I cannot forgive? Assistant: You do not have to "
    "decide about forgiveness tonight. Forgiveness, if it comes, is usually a process over "
    "months, and it depends on honesty, repair and time. For now, focus on getting the facts "
    "and looking after yourself: sleep, a friend you trust, and perhaps an individual "
    "session for your own support.",
    " User: He says he works longer hours so it should balance out. Assistant: That argument "
    "often hides a real difference in how each of you values paid and unpaid work. Try "
    "adding up the hours honestly, including childcare and planning, which is often "
    "invisible. Seeing the total on paper tends to move the discussion from who is lazy to "
    "what is fair for this household.",
    " User: My partner refuses to talk about it at all now. Assistant: Silence can be a way "
    "of avoiding a loss that feels too big. You might agree on a specific time to talk, with "
    "a clear end, so the topic does not take over every evening. If that still fails, a "
    "couples counsellor can create a safer space where both of you can speak without the "
    "conversation turning into a battle.",
]

# Distinct conversations on one topic (marriage counselling): they share vocabulary and phrases
# but are different conversations, and must not be flagged.
TOPIC = [
    "User: My husband and I argue every evening about money. He thinks I spend too much on the "
    "kids and I think he hides what he earns. Assistant: That sounds exhausting for both of you. "
    "Money arguments are often about trust more than numbers. Could you each write down what you "
    "spend in a normal month and compare the lists together on a calm weekend morning?",
    "User: My wife wants to move closer to her parents but my job is here and I love it. "
    "Assistant: It is hard when two good things pull in opposite directions. What does moving "
    "mean to her, and what would staying mean to you? Sometimes naming the need behind the wish "
    "opens options neither of you has considered yet, like a trial period or remote work.",
    "User: We stopped talking after our second child was born. We are polite but distant, like "
    "roommates. Assistant: Many couples feel that drift in the early years of parenting, because "
    "sleep and attention are scarce. Small rituals help: ten minutes each night without phones, "
    "asking one real question about the other's day. Would your partner be open to trying that?",
    "User: I found messages on my partner's phone that looked like flirting with a coworker. "
    "Assistant: I am sorry, discovering that can shake your sense of safety. Before deciding what "
    "it means, it may help to tell your partner what you saw and how it made you feel, and to "
    "listen to the answer. A counsellor can hold that conversation if it feels too raw alone.",
    "User: My spouse never helps with housework and I am tired of asking. Assistant: Resentment "
    "builds quickly when the load feels one-sided. Instead of asking task by task, you could sit "
    "down together and list every chore in the house, then split ownership, so nobody has to be "
    "the manager who reminds the other. How do you think your spouse would react to that idea?",
    "User: We disagree about whether to have a third child and it is tearing us apart. Assistant: "
    "That is one of the hardest disagreements because there is no halfway answer. It may help to "
    "explore the fears and hopes under each position: finances, energy, identity, family history. "
    "Understanding them will not decide the question, but it usually lowers the temperature.",
]
TOPIC = [first + second for first, second in zip(TOPIC, FOLLOW_UPS)]


def _edit_one_word(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_normalize_text():
    assert normalize_text("  Hello,   WORLD!\n\tIt's  fine. ") == "hello world it s fine"
    assert normalize_text("Straße") == normalize_text("STRASSE")  # casefold, not lower
    assert shingles("a b c d") == {"a b c", "b c d"}
    assert shingles("Hi there") == {"hi there"}
    assert shingles("...") == set()


def test_distinct_conversations_on_one_topic_are_not_flagged():
    findings = dedup(TOPIC)
    assert list(findings) == []
    assert findings.stages_run == ["exact", "minhash"]
    assert findings.stages_skipped == {"embedding": "no embeddings given"}


def test_planted_near_duplicates_are_caught():
    texts = list(TOPIC)
    texts.append(TOPIC[2].upper().replace(",", " ;"))  # 6: case and punctuation only -> exact
    texts.append(_edit_one_word(TOPIC[0], "exhausting", "draining"))  # 7: one word -> minhash
    texts.append(_edit_one_word(TOPIC[4], "quickly ", ""))  # 8: one word dropped -> minhash
    texts.append(TOPIC[3] + "  ")  # 9: whitespace -> exact
    findings = dedup(texts)
    got = {(f.index, f.duplicate_of_index, f.method) for f in findings}
    assert got == {(6, 2, "exact"), (7, 0, "minhash"), (8, 4, "minhash"), (9, 3, "exact")}
    for finding in findings:
        assert finding.reason == f"duplicate:{finding.method}"
        assert 0.9 <= finding.score <= 1.0
    assert findings.dropped == {6, 7, 8, 9}


def test_the_earlier_sample_is_kept():
    texts = [_edit_one_word(TOPIC[1], "hard", "difficult"), TOPIC[5], TOPIC[1]]
    (finding,) = dedup(texts)
    assert (finding.index, finding.duplicate_of_index) == (2, 0)


def test_minhash_threshold_is_configurable():
    edited = _edit_one_word(_edit_one_word(TOPIC[0], "exhausting", "draining"), "trust", "respect")
    texts = [TOPIC[0], edited]
    assert len(dedup(texts)) == 1
    assert dedup(texts, settings=DedupSettings(minhash_threshold=0.99)) == []
    assert dedup(texts, settings=DedupSettings(minhash=False)) == []


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _at_cosine(rng, base, cos):
    """A unit vector with the given cosine to ``base``."""
    noise = rng.normal(size=base.shape)
    noise -= noise.dot(base) * base
    noise /= np.linalg.norm(noise)
    return _unit(cos * base + math.sqrt(1 - cos * cos) * noise)


def test_embedding_stage_catches_paraphrases_and_keeps_the_earlier():
    rng = np.random.default_rng(11)
    n, dim = len(TOPIC), 32
    base = _unit(rng.normal(size=(n, dim)))
    texts = list(TOPIC) + ["A paraphrase with entirely different words.", "Another rewording."]
    vectors = np.vstack([base, _at_cosine(rng, base[1], 0.95), _at_cosine(rng, base[4], 0.85)])
    findings = dedup(texts, embeddings=vectors)
    assert [(f.index, f.duplicate_of_index, f.method) for f in findings] == [(6, 1, "embedding")]
    assert findings[0].score == pytest.approx(0.95, abs=1e-4)
    assert findings.stages_run == ["exact", "minhash", "embedding"]
    stricter = dedup(texts, embeddings=vectors, settings=DedupSettings(embedding_threshold=0.8))
    assert {f.index for f in stricter} == {6, 7}


def test_embedding_stage_never_drops_against_a_dropped_sample():
    rng = np.random.default_rng(5)
    a = _unit(rng.normal(size=16))
    b = _at_cosine(rng, a, 0.93)  # duplicate of a: dropped
    c = _at_cosine(rng, b, 0.93)  # close to b (dropped) but maybe not to a
    vectors = np.vstack([a, b, c])
    findings = dedup(["x", "y", "z"], embeddings=vectors, settings=DedupSettings(exact=False, minhash=False))
    by_index = {f.index: f for f in findings}
    assert by_index[1].duplicate_of_index == 0
    if 2 in by_index:
        assert by_index[2].duplicate_of_index == 0  # never 1, which was dropped
        assert float(a @ c) >= 0.9
    else:
        assert float(a @ c) < 0.9


def test_embedding_count_must_match():
    with pytest.raises(ValueError):
        dedup(["a", "b"], embeddings=np.eye(3, dtype=np.float32))


@pytest.mark.slow
def test_real_embedder_catches_a_paraphrase_that_minhash_misses():
    embed = pytest.importorskip("fountain.embed.embedder")
    pytest.importorskip("sentence_transformers")
    paraphrase = TOPIC[0]
    for old, new in [
        ("argue every evening", "fight every night"),
        ("exhausting", "draining"),
        ("write down", "list"),
        ("calm weekend morning", "quiet Sunday morning"),
        ("Pick one small", "Choose one little"),
    ]:
        paraphrase = _edit_one_word(paraphrase, old, new)
    texts = list(TOPIC) + [paraphrase]
    vectors = embed.load_embedder().encode(texts)
    findings = dedup(texts, embeddings=vectors)
    # Same topic, different conversations: none flagged. The paraphrase (word Jaccard ~0.72, below
    # the MinHash threshold) is caught by the embedding stage.
    assert [(f.index, f.duplicate_of_index, f.method) for f in findings] == [(6, 0, "embedding")]
