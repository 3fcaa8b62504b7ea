"""Dialogue: deterministic, topic- and persona-aware, responsive to the last turn, and it ends."""

from __future__ import annotations

import re

from llmsim import engine
from llmsim.calls import Prompt
from llmsim.dialogue import Pacing, Turn, find_persona, find_topic, is_closing, voice_for
from llmsim.textstats import count_tokens

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
    """Across seeds, replies quote the last message verbatim or pick up its key phrases."""
    turns = conversation(2)
    last = turns[-1].text
    quoted = picked_up = 0
    for seed in range(20):
        text = reply(turns, seed=seed)
        quotes = re.findall(r'"([^"]+)"', text)
        quoted += any(q in last for q in quotes)
        picked_up += any(
            p in text for p in ("knowledge workers", "remote work", "productivity", "culture")
        )
    assert quoted >= 3
    assert picked_up >= 18


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
