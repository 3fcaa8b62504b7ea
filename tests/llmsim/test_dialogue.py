"""Dialogue: deterministic, topic- and persona-aware, responsive to the last turn, and it ends."""

from __future__ import annotations

import itertools
import re

from llmsim import engine
from llmsim.calls import Prompt
from llmsim.dialogue import (
    Pacing,
    Turn,
    aspects_of,
    content_words,
    find_persona,
    find_topic,
    is_closing,
    voice_for,
)
from llmsim.textstats import count_tokens, sentences

SYSTEM = (
    "You are a skeptical economist taking part in a conversation about the future of remote work. "
    "Keep each reply short."
)
OPENING = "Start the conversation about the future of remote work."
LINES = [
    "I think remote work has boosted productivity for knowledge workers, but managers worry about culture.",
    "Offices still matter for serendipity, although commuting costs are a real burden for families.",
    "Hybrid schedules seem like a compromise, yet they often leave empty desks on Fridays.",
    "Cities will have to rethink downtown real estate, because vacancy rates keep climbing.",
    "Wages might also adjust, since companies can hire from cheaper regions.",
    "Unions are starting to negotiate remote allowances into contracts.",
    "Some firms now pay a stipend for home offices and internet costs.",
]


def conversation(n_user_turns: int) -> tuple[Turn, ...]:
    """A conversation ending with a user turn: OPENING, then alternating assistant/user turns."""
    turns = [Turn("user", OPENING)]
    for i in range(n_user_turns - 1):
        turns.append(Turn("assistant", f"Reply number {i} about remote work and productivity."))
        turns.append(Turn("user", LINES[i % len(LINES)]))
    return tuple(turns)


def reply(
    turns: tuple[Turn, ...], model: str = "claude-sonnet-5-5", seed: int = 0, system: str = SYSTEM
) -> str:
    prompt = Prompt(system=system, turns=turns)
    return engine.complete(prompt, model=model, seed=seed, pacing=Pacing()).text


def test_topic_and_persona_come_from_the_system_prompt() -> None:
    assert find_topic(SYSTEM, OPENING) == "the future of remote work"
    assert find_topic("Debate: Should cities ban cars?", "") == "Should cities ban cars"
    assert (
        find_topic("", "Nuclear energy and climate policy are on my mind today.")
        == "nuclear energy and climate policy"
    )
    assert find_persona(SYSTEM) == "a skeptical economist"
    assert find_persona("You are Ada, a retired teacher who loves history.") == "a retired teacher"
    assert find_persona("Be brief.") is None


def test_same_seed_and_request_give_the_same_text() -> None:
    turns = conversation(3)
    assert reply(turns) == reply(turns)
    assert reply(turns, seed=1) != reply(turns, seed=2)


def test_turns_and_models_differ() -> None:
    texts = {reply(conversation(n)) for n in range(1, 6)}
    assert len(texts) == 5
    by_model = {
        reply(conversation(3), model=m)
        for m in ("claude-sonnet-5-5", "gemini-3.5-flash", "gpt-5", "llama-4")
    }
    assert len(by_model) == 4
    assert {voice_for(m).name for m in ("claude-x", "gemini-x", "gpt-x", "llama-x")} == {
        "measured", "energetic", "direct", "socratic",
    }  # fmt: skip


def test_a_reply_responds_to_the_last_turn() -> None:
    """Across seeds, replies quote the last message or name what it was about: words of the
    last message that neither the topic nor the opening says."""
    turns = conversation(2)
    last = turns[-1].text
    own = set(content_words(last)) - set(content_words(SYSTEM + " " + OPENING))
    quoted = answered = 0
    for seed in range(20):
        text = reply(turns, seed=seed)
        quotes = re.findall(r'"([^"]+)"', text)
        quoted += any(q.lower() in last.lower() for q in quotes)
        answered += bool(own & set(content_words(text)))
    assert quoted >= 2
    assert answered >= 18


def test_the_opening_turn_sets_up_the_topic() -> None:
    text = reply(conversation(1))
    assert "remote work" in text
    assert not is_closing(text)


def test_lengths_vary_across_turns() -> None:
    lengths = {count_tokens(reply(conversation(n), seed=s)) for n in (2, 3) for s in range(6)}
    assert max(lengths) > 2 * min(lengths)


def test_long_conversations_wind_down() -> None:
    early = [is_closing(reply(conversation(2), seed=s)) for s in range(30)]
    late = [is_closing(reply(conversation(8), seed=s)) for s in range(30)]  # 15 messages
    assert not any(early)
    assert all(late)
    middle = sum(is_closing(reply(conversation(5), seed=s)) for s in range(40))  # 9 messages
    assert 0 < middle < 40


def test_a_closing_turn_gets_a_closing_reply() -> None:
    turns = (
        *conversation(2),
        Turn("assistant", "Fair."),
        Turn("user", "Thanks, this was a good exchange."),
    )
    assert is_closing(reply(turns))


def simulated(topic: str, seed: int, n_turns: int = 10, pacing: Pacing | None = None) -> list[str]:
    """Two simulated models talking the way the service asks them to: each sees its persona and
    the topic as the system prompt, its own turns as assistant, the other's as ``Name: …``."""
    seats = (
        ("Ana", "Ben", "an urban planner", "claude-sonnet-5-5"),
        ("Ben", "Ana", "a shop owner", "gemini-3.5-flash"),
    )
    said: list[tuple[str, str]] = []
    for i in range(n_turns):
        me, other, persona, model = seats[i % 2]
        system = (
            f"You are {me}, in a discussion with {other}.\nTopic: {topic}\n{persona}\n"
            "Reply in a few sentences, in your own voice, to what was just said. "
            "When the discussion has run its course, wrap it up."
        )
        turns = [Turn("user", f"The topic is: {topic}. Ana opens the discussion.")]
        for speaker, text in said:
            role = "assistant" if speaker == me else "user"
            seen = text if speaker == me else f"{speaker}: {text}"
            if turns[-1].role == role:
                turns[-1] = Turn(role, f"{turns[-1].text}\n\n{seen}")
            else:
                turns.append(Turn(role, seen))
        prompt = Prompt(system=system, turns=tuple(turns))
        answer = engine.complete(prompt, model=model, seed=seed, pacing=pacing or Pacing())
        said.append((me, answer.text))
    return [text for _, text in said]


def opening(text: str) -> str:
    """The reaction a reply opens with (after an interjection such as "Hmm.")."""
    return " ".join(s.text for s in sentences(text)[:2])


def reaction(text: str) -> str:
    """The first sentence of a reply that is more than an interjection."""
    return next(s.text for s in sentences(text) if len(s.words) >= 3)


def distinct_2(texts: list[str]) -> float:
    tokens = [w.lower() for t in texts for w in re.findall(r"[\w']+", t)]
    bigrams = list(itertools.pairwise(tokens))
    return len(set(bigrams)) / len(bigrams)


def test_a_simulated_conversation_is_varied_and_moves_on() -> None:
    """Ten turns between two simulated models: lexically varied (distinct-2), no reply or
    sentence said twice, each reply takes up the turn before it, and a question now and then."""
    for seed, topic in enumerate(["Should cities ban cars?", "the future of remote work"] * 3):
        texts = simulated(topic, seed, pacing=Pacing(30, 40))
        assert distinct_2(texts) >= 0.75, (seed, distinct_2(texts))
        assert len(set(texts)) == len(texts)
        said = [s.text for t in texts for s in sentences(t)]
        assert len(said) - len(set(said)) <= 1, seed
        # Taken up: words of the turn before, or the point it made named ("the cost point").
        answered = sum(
            bool(set(content_words(opening(reply))) & set(content_words(before)))
            or bool(set(aspects_of(reaction(reply))) & set(aspects_of(before)[:3]))
            for before, reply in itertools.pairwise(texts)
        )
        assert answered >= 8, (seed, answered)
        assert 1 <= sum(t.rstrip().endswith("?") for t in texts) <= 9
        assert not any(is_closing(t) for t in texts)


def test_a_simulated_conversation_still_closes() -> None:
    for seed in range(10):
        texts = simulated("Should cities ban cars?", seed, n_turns=16)
        closed = [is_closing(t) for t in texts]
        assert any(a and b for a, b in itertools.pairwise(closed)), seed


def test_a_request_to_end_gets_a_closing_turn() -> None:
    turns = conversation(3)
    for seed in range(10):
        assert not is_closing(reply(turns, seed=seed))
        ending = (*turns[:-1], Turn("user", turns[-1].text + " This is your last turn."))
        assert is_closing(reply(ending, seed=seed))
