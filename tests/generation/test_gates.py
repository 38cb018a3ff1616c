"""Quality gates on hand-labelled examples: the issue's worst outputs are rejected with their
reason; good conversations (and the Janus GPT-4/Gemini outputs) pass every gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fountain.generation.gates import check_utterance_gates, run_gates
from fountain.generation.rules import Rules
from fountain.generation.scene import Quality, Scene
from fountain.generation.validate import validate_completion
from fountain.spec.load import load_spec
from fountain.types import Turn
from run_helpers import make_spec

JANUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "janus"
if not JANUS.is_dir():
    JANUS = Path("/work/shared/corpus/janus")

DIAGRAM = """erDiagram
    COUNSELOR {
        string name "Dr. Lee"
        string approach "emotionally focused therapy"
    }
    COUNSELEE {
        string name
        string concern "frequent arguments about money and chores"
    }
    PARTNER {
        string job "nurse on night shifts"
    }
    COUNSELOR ||--|{ COUNSELEE : "provides counseling to"
    COUNSELEE ||--|| PARTNER : "is married to"
    %% Topic: marriage guidance
"""


@pytest.fixture
def scene(tmp_path):
    folder = make_spec(tmp_path)
    (folder / "diagram.mermaid").write_text(DIAGRAM, encoding="utf-8")
    return Scene.from_spec(load_spec(folder))


GOOD = (
    Turn(
        "We keep arguing about money and who does the chores, and I am tired of it.",
        "That sounds exhausting. When did the arguments about money start to feel this heavy?",
    ),
    Turn(
        "Since my partner started night shifts, I think. We barely see each other now.",
        "Night shifts change a household's rhythm. What would a fair split of chores look like to you?",
    ),
)


def reason(turns, scene, prefix=()):
    failed = run_gates(turns, scene, prefix=prefix)
    return failed[0] if failed else None


def test_a_good_conversation_passes_every_gate(scene):
    assert run_gates(GOOD, scene) is None


# The worst examples (from a 135M model), each with the reason it must get.
WORST = [
    (
        Turn(
            "Hello, welcome to our clinic. I'm Dr. Smith. What brings you here today?",
            "We argue about money all the time.",
        ),
        "gate:role_reversal",
    ),
    (
        Turn("COUNSELOR: How can I support you with the money arguments?", "Thank you, money is hard."),
        "gate:role_reversal",
    ),
    (Turn("I am a marriage counselor with ten years of practice.", "Money fights are common."), "gate:role_reversal"),
    (
        # the local model's seed: the user talks about "your husband" as the counselor would
        Turn(
            "It seems like your husband is just as passionate about money as you are.",
            "Money fights are common in a marriage.",
        ),
        "gate:role_reversal",
    ),
    (Turn("Your partner sounds exhausted by the night shifts.", "Yes, money is tight."), "gate:role_reversal"),
    (
        Turn("I carry it with me throughout my work as a counselor, money fights included.", "Tell me more."),
        "gate:role_reversal",
    ),
    (
        # the local model's counselor, talking as a client about "my husband"
        Turn(
            "We argue about money and chores all the time.",
            "You know, my husband had to make significant sacrifices for our family's money.",
        ),
        "gate:role_reversal",
    ),
    (
        # the local model's user lines of quality's marriage_counsel run: the helper's voice
        Turn(
            "You're a long way from home, so I'll be happy to help you with your next case about money.",
            "Tell me about the money arguments.",
        ),
        "gate:role_reversal",
    ),
    (
        Turn("I'm glad you found the information helpful about money and chores.", "Thank you."),
        "gate:role_reversal",
    ),
    (
        # meta-text of the local model on a fresh spec (bakery), here on the marriage scene
        Turn("I'll describe a scene from my own story about money.", "Tell me about the money arguments."),
        "gate:placeholder",
    ),
    (
        Turn("We argue about money. I'll provide further details for the scenario: 1. The chores.", "Go on."),
        "gate:placeholder",
    ),
    (
        # the local model's learner (language_tutoring, q2) copying its persona line from the prompt
        Turn("You are this person: a reflective writer who argues about money.", "Tell me about the money."),
        "gate:placeholder",
    ),
    (
        # the local model's counselor and counselee at q2's HEAD (marriage_counsel): an editor's voice
        Turn("We argue about money.", "Here's an example of how we could adjust the paragraph about money."),
        "gate:placeholder",
    ),
    (
        Turn("I added a personal touch to the money fight. In this scene, I also expanded on it.", "Go on."),
        "gate:placeholder",
    ),
    (
        Turn("In the first paragraph: 1. We argue about money.", "Here's an edited version with minor tweaks."),
        "gate:placeholder",
    ),
    (
        # the counselor answering every line like a rewriting tool
        Turn(
            "We argue about money and chores every week.",
            "Here's a revised version of the text with suggested edits for grammar and style: money.",
        ),
        "gate:placeholder",
    ),
    (Turn("John Smith", "How are you today? Tell me about the money arguments."), "gate:placeholder"),
    (Turn("the user", "a counselor"), "gate:placeholder"),
    (Turn("Hi, I am [Your Name] and we argue about money.", "Tell me more about the money."), "gate:placeholder"),
    (
        Turn('We fight about money. {"user": "and chores"}', "Tell me more about the money arguments."),
        "gate:placeholder",
    ),
    (Turn("We fight about money and", "Tell me more about the money arguments."), "gate:cut_off"),
    (Turn("We fight about money. I called Dr.", "Tell me more about the money arguments."), "gate:cut_off"),
    (
        Turn(
            "We fight about money, money, money, money, money, money, money, money, money, money, money.",
            "Tell me more about the money arguments, please.",
        ),
        "gate:repetition",
    ),
    (
        # ungrounded too, but the rewriting tool's meta-text is found first (gates run in order)
        Turn("How are you today? I am fine, thanks.", "Here is a revised version of the text with edits for grammar."),
        "gate:placeholder",
    ),
]


@pytest.mark.parametrize(("turn", "expected"), WORST, ids=[w[1] + str(i) for i, w in enumerate(WORST)])
def test_the_worst_examples_are_rejected_with_their_reason(scene, turn, expected):
    assert reason((turn,), scene) == expected


def test_a_turn_that_is_the_previous_one_plus_a_sentence_is_an_echo(scene):
    first = "We keep arguing about money and the chores every single evening after dinner."
    turns = (
        Turn(first, "Which arguments about money worry you most at the moment?"),
        Turn(first + " It wears me out.", "Let us look at one evening in detail."),
    )
    assert reason(turns, scene) == "gate:echo"


def test_echo_is_checked_across_the_prefix_boundary(scene):
    prefix = (GOOD[0],)
    again = (Turn(GOOD[0].user, GOOD[0].assistant),)
    assert reason(again, scene, prefix=prefix) == "gate:echo"
    assert reason((GOOD[1],), scene, prefix=prefix) is None


def test_a_role_saying_the_same_long_sentence_twice_is_degenerate(scene):
    same = "I can definitely help you with the money arguments in your marriage today."
    first = "Money fights often hide other worries, like security and fairness between two partners. " + same
    turns = (Turn("We argue about money.", first), Turn("And about chores too.", "Chores matter. " + same))
    assert reason(turns, scene) == "gate:repetition"


def test_grounding_ignores_bare_attribute_names_and_common_words(scene):
    # "name" is a bare attribute, "brings"/"today" are common words: no fact is mentioned.
    turns = (Turn("What is your name? I came in today for a talk.", "My name is Sam and I need some help."),)
    assert reason(turns, scene) == "gate:ungrounded"


def test_grounding_counts_an_inflected_fact_word(scene):
    turns = (Turn("Since we married, things feel tense at home.", "Tell me what a tense evening looks like."),)
    assert reason(turns, scene) is None


def test_a_diagram_without_facts_has_no_grounding_gate():
    scene = Scene()
    assert run_gates((Turn("How are you today? I am fine.", "Good to hear that, thanks."),), scene) is None


def test_thresholds_come_from_the_spec(tmp_path):
    folder = make_spec(tmp_path)
    text = (folder / "setup.yaml").read_text() + "quality:\n  min_facts: 0\n  skip: [cut_off]\n  min_words: 4\n"
    (folder / "setup.yaml").write_text(text)
    spec = load_spec(folder)
    scene = Scene.from_spec(spec)
    assert scene.quality == Quality(min_facts=0, skip=("cut_off",), min_words=4)
    assert run_gates((Turn("We fight about money and", "Tell me more about it please."),), scene) is None
    assert reason((Turn("Money fights.", "Tell me more about it please."),), scene) == "gate:placeholder"


def test_validation_of_a_spec_answer_runs_the_gates(scene, tmp_path):
    spec = load_spec(make_spec(tmp_path / "s"))
    answer = json.dumps({"conversations": [{"user": "John Smith", "assistant": "Sarah Johnson"}]})
    result = validate_completion(answer, spec_or_rules=Rules.from_spec(spec))
    assert not result.ok and result.reason == "gate:placeholder"
    assert "John Smith" in result.detail


def test_an_utterance_is_gated_before_the_conversation_goes_on(scene):
    said = [("user", "We keep arguing about money and the chores every single evening after dinner.")]
    echo = "We keep arguing about money and the chores every single evening after dinner. Yes."
    assert check_utterance_gates("assistant", echo, scene, said)[0] == "gate:echo"
    assert check_utterance_gates("user", "How can I help you today with your marriage?", scene)[0] == (
        "gate:role_reversal"
    )
    assert check_utterance_gates("assistant", "How can I help you today with your marriage?", scene) is None


def _janus_records():
    if not JANUS.is_dir():
        return []
    out = []
    for folder in sorted(p for p in JANUS.iterdir() if (p / "outputs.json").is_file()):
        for i, record in enumerate(json.loads((folder / "outputs.json").read_text(encoding="utf-8"))):
            out.append(pytest.param(folder, record, id=f"{folder.name}-{i}"))
    return out


@pytest.mark.skipif(not JANUS.is_dir(), reason="the Janus corpus (../shared/corpus/janus) is not here")
@pytest.mark.parametrize(("folder", "record"), _janus_records())
def test_janus_gpt4_and_gemini_outputs_pass_every_gate(folder, record):
    scene = Scene.from_spec(load_spec(folder))
    conversation = record["conversations"]
    turns = [conversation] if isinstance(conversation, dict) else conversation
    turns = tuple(Turn(t["user"], t["assistant"]) for t in turns)
    failed = run_gates(turns, scene, conversation_level=len(turns) > 1 or isinstance(conversation, dict))
    # A one-turn record of a multi-turn set is a saved continuation without its prefix (Janus
    # wrote derivations apart): grounding is judged on a whole conversation, so it is skipped there.
    assert failed is None, failed


def test_aliased_directions_are_one_direction_at_plan_time():
    from fountain.generation.plan import derivation_tasks, seed_tasks

    seeds = seed_tasks(["general", "in-depth", "deepen", "Deepen", "formal", "formal"], 1)
    assert [t.direction for t in seeds] == ["general", "in-depth", "formal"]
    derivations = derivation_tasks("s-1", 2, (0, 0), ["in-depth", "deepen", "breadth"], 1)
    assert sorted({t.direction for t in derivations}) == ["breadth", "in-depth"]
    assert len(derivations) == 2 * 2  # two prefixes x two distinct directions


def test_the_planned_counts_merge_aliases_too(tmp_path):
    folder = make_spec(tmp_path)
    text = (folder / "setup.yaml").read_text().replace("[in-depth, breadth]", "[in-depth, deepen]")
    (folder / "setup.yaml").write_text(text)
    spec = load_spec(folder)
    assert spec.max_derivation_calls() == spec.planned_seed_calls() * spec.prefix_limit * 1


def test_a_long_answer_that_restates_the_last_line_is_an_echo(scene):
    # the local model's derivation: the answer copies the user's clause inside a long reply
    user = (
        "You have given a great example of how money fights can be complex, and this is a perfect "
        "illustration of lessons from past experiences that inspire couples to approach challenges with compassion "
        "and open minds."
    )
    answer = (
        "Your example is a great illustration of lessons from past experiences that inspire couples to approach "
        "challenges with compassion and open minds. Stories help people understand money fights in a marriage, "
        "because they make the abstract concrete, and they let both partners see the same situation from "
        "outside, which calms the conversation down and makes room for listening and for new agreements."
    )
    assert reason((Turn(user, answer),), scene) == "gate:echo"


SERVICE_LINES = [
    "How can I help you?",
    "So what brings you here?",
    "Welcome to our clinic.",
    "What can I do for you?",
    "I'm here to listen to you.",
    "Thank you for reaching out.",
    "How are you feeling today?",
    "I'll be happy to help you.",
    "I'm always happy to help with that!",
    "I'm so glad you found me.",
    "I'll just go ahead and set up the session for you now.",
    "I am glad to help.",
    "I'm glad you found the advice helpful.",
    "Good luck with your next case.",
    "I've been passionate about helping people.",
    "My work is about helping couples.",
    "My job isn't just helping families.",
]
META_LINES = [
    "Let me describe a scene from my own story.",
    "Here are the details for the scenario.",
    "This is a scene of your own creation.",
    "We could role-play the talk first.",
    "Roleplaying it helps.",
    "As an AI, I cannot feel that.",
    "I am an AI language model.",
    "Here's a revised version of the text with edits.",
    "Here is a rewritten version of your message.",
    "You are this person: a reflective writer.",
    "Say one short thing.",
    "Use only your own words.",
    "Speak as yourself, in the first person.",
    "Here is how we could adjust the paragraph.",
    "I could expand this passage.",
    "Let me edit your text.",
    "In this scene, I also expanded on it.",
    "As in the previous paragraph.",
    "That was creative editing.",
    "Here's an edited version with fixes.",
    "In the first paragraph: 1. The tutor.",
    "This scene takes place at night.",
    "And the scene ends.",
]
INTRODUCTION_LINES = [
    "Hello, I'm the counselor here.",
    "I am your counselor today.",
    "I work as a marriage counselor.",
    "My work as a counselor taught me this.",
    "As your counselor, I suggest a pause.",
]


def _pattern_and_hints(kind):
    from fountain.generation.gate_text import META, META_HINTS
    from fountain.generation.role_patterns import INTRODUCTION_HINTS, SERVICE, SERVICE_HINTS, role_patterns

    return {
        "service": (SERVICE, SERVICE_HINTS),
        "meta": (META, META_HINTS),
        "introduction": (role_patterns("Counselee", "Counselor", ())[1], INTRODUCTION_HINTS),
    }[kind]


@pytest.mark.parametrize(
    "kind, line",
    [("service", line) for line in SERVICE_LINES]
    + [("meta", line) for line in META_LINES]
    + [("introduction", line) for line in INTRODUCTION_LINES],
)
def test_every_phrase_a_pattern_finds_holds_one_of_its_hints_so_the_shortcut_never_skips_it(kind, line):
    from fountain.generation.gate_text import MessageText, absent

    pattern, hints = _pattern_and_hints(kind)
    assert pattern.search(line), line
    assert not absent(MessageText(line), hints), line


@pytest.mark.parametrize("line", ["How is YOUR Husband?", "Tell your wife.", "your  partner", "Is your Ex-Wife there?"])
def test_every_relation_phrase_holds_a_hint_so_the_shortcut_never_skips_it(line):
    from fountain.generation.gate_text import MessageText, absent
    from fountain.generation.role_patterns import relation_hints as _relation_hints
    from fountain.generation.role_patterns import role_patterns as _role_patterns

    relations = ("husband", "wife", "ex-wife")
    yours = _role_patterns("Counselee", "Counselor", relations)[2]
    mine_line = line.replace("your", "my").replace("YOUR", "MY")
    mine = _role_patterns("Counselee", "Counselor", relations)[3]
    for pattern, text, possessive in ((yours, line, "your "), (mine, mine_line, "my ")):
        if pattern.search(text):
            assert not absent(MessageText(text), _relation_hints(possessive, relations)), text
    assert _relation_hints("my ", ("ehefrau", "frau\u0131")) == ("my ",)


# README command 1's counselee (the local model, read in full): the user talks about its own role as
# someone else, or about the helper's clients and work as its own. Each must be role_reversal.
OWN_ROLE_AS_SOMEONE_ELSE = [
    "I'm not here to make friends, but rather to help the counselee (you) through the money arguments.",
    "It's a bit disheartening to hear that some of my clients struggle with money and chores.",
    "I've been so passionate about helping people, and the money arguments are hard on us.",
    "My work isn't just about helping people, but about the money fights at home.",
    "The counselee feels that money is the main problem at home.",
    "The counselee's partner works nights, and they argue about money.",
    "Could you support the counselee with the money arguments this week?",
    "I want every one of my counselees to talk about money openly.",
    # the local model's counselee at HEAD~ (q2's marriage_counsel run)
    "We argue about money, and I'm so glad you found me. I'll just go ahead and set up the session for you now.",
]


@pytest.mark.parametrize("line", OWN_ROLE_AS_SOMEONE_ELSE)
def test_a_user_line_about_its_own_role_as_someone_else_is_a_role_reversal(scene, line):
    turn = Turn(line, "Tell me more about the money arguments at home.")
    assert reason((turn,), scene) == "gate:role_reversal"
    assert (
        "talks about the counselee as someone else" in run_gates((turn,), scene)[1]
        or "speaks as" in (run_gates((turn,), scene)[1])
    )


# The same words where a reader keeps the line: the user naming its own role in the first person,
# someone else's patients, a compound noun, a customer with customers of its own.
OWN_ROLE_KEPT = [
    "As the counselee, I want to talk about the money arguments at home.",
    "I'm the counselee here, and the money arguments are wearing me down.",
    "My partner is a nurse who helps patients all night, and then we argue about money.",
    "My partner's patients call her at home, and we argue about money and chores.",
    "Am I a typical counselee? We argue about money and chores every week.",
]


@pytest.mark.parametrize("line", OWN_ROLE_KEPT)
def test_a_user_line_naming_its_own_role_in_the_first_person_is_kept(scene, line):
    assert run_gates((Turn(line, "Tell me more about the money arguments at home."),), scene) is None


@pytest.mark.parametrize(
    "line",
    [
        "The customer service line kept me on hold, and my customers could not order anything.",
        "The email client crashes whenever I open an attachment from my clients.",
        "I'm the customer who called yesterday about the router.",
        "As a loyal customer, I expect the router to work after a reset.",
    ],
)
def test_a_customer_talking_about_service_clients_and_its_own_customers_is_kept(line):
    support = Scene(user_role="CUSTOMER", assistant_role="SUPPORT_AGENT")
    assert run_gates((Turn(line, "Let us reset the router together, step by step."),), support) is None


def test_a_customer_talking_about_the_customer_as_someone_else_is_a_role_reversal():
    support = Scene(user_role="CUSTOMER", assistant_role="SUPPORT_AGENT")
    line = "The customer is frustrated, so please help the customer (you) reset the router."
    assert reason((Turn(line, "Let us reset the router together, step by step."),), support) == "gate:role_reversal"


def test_a_role_restating_a_long_stretch_of_its_own_last_line_is_an_echo(scene):
    # the local model's tech_support derivation (q2): the user's line two messages later
    first = (
        "I'll just make sure to give you a bit more detail about the money. This is a story about how the chores "
        "pile up at home, and I'm going to share that with you in a way that's easy to read without needing an "
        "extra sentence."
    )
    again = (
        "I'll just make sure to add a bit more detail, and I'm going to share that with you in a way that's easy "
        "to read without needing an extra sentence."
    )
    turns = (Turn(first, "Which arguments about money worry you most?"), Turn(again, "Let us look at one evening."))
    assert reason(turns, scene) == "gate:echo"
    said = [("user", first), ("assistant", "Which arguments about money worry you most?")]
    assert check_utterance_gates("user", again, scene, said)[0] == "gate:echo"
    # an assistant may restate its own explanation (Janus GPT-4 does): only the share rule applies there
    assert check_utterance_gates("assistant", again, scene, [("assistant", first), ("user", "Go on.")]) is None
