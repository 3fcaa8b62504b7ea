"""Ending detection on human-like transcripts: when to stop early, and when not to."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chimera.conversation.ending import EndDecision, detect_end, ending_of, is_closing
from chimera.conversation.text import content_words, shingles
from chimera.models import Provider, TranscriptTurn
from tests.chimera.conversation import transcripts as tx


def first_end(
    turns: Sequence[TranscriptTurn], *, min_turns: int, max_turns: int
) -> tuple[int, EndDecision] | None:
    """Run detection the way the engine does (after each turn); the first end and its length."""
    for n in range(1, len(turns) + 1):
        decision = detect_end(turns[:n], min_turns=min_turns, max_turns=max_turns)
        if decision is not None:
            return n, decision
    return None


THREE = (tx.CLAUDE, tx.GEMINI, tx.GPT)

CASES = [
    # (name, texts, speakers, min_turns, max_turns, expected (turns, reason) or None, in detail)
    ("summary and thanks on both sides", tx.CARS, tx.CLAUDE_GEMINI, 5, 10, (7, "natural_close"), "to sum up"),
    ("closing on the last allowed turn", tx.CARS, tx.CLAUDE_GEMINI, 5, 7, (7, "natural_close"), "both closed"),
    ("three participants close", tx.CARS, THREE, 5, 10, (7, "natural_close"), "gpt-5-mini"),
    ("closing proposed as a question", tx.CALL_IT_A_DAY, tx.CLAUDE_GEMINI, 2, 10, (5, "natural_close"), "call it a day"),
    ("a goodbye alone", tx.GOODBYE, tx.CLAUDE_GEMINI, 2, 10, (4, "natural_close"), "goodbye"),
    ("explicit consensus", tx.CONVERGE, tx.CLAUDE_GEMINI, 2, 10, (5, "convergence"), "same page"),
    ("near-duplicate turn", tx.LOOPING, tx.CLAUDE_GEMINI, 2, 10, (5, "repetition"), "near-duplicates turn 1"),
    ("recycled content", tx.RECYCLING, tx.CLAUDE_GEMINI, 2, 10, (5, "repetition"), "recycle"),
    ("disagreement runs to the cap", tx.NUCLEAR, tx.CLAUDE_GEMINI, 2, 6, (6, "max_turns"), "max_turns (6)"),
    # Must not end early:
    ("disagreement keeps going", tx.NUCLEAR, tx.CLAUDE_GEMINI, 2, 10, None, ""),
    ("thanks-but and a question before wrapping up", tx.THANKS_BUT, tx.CLAUDE_GEMINI, 2, 10, None, ""),
    ("negated and pivoting closings", tx.NOT_DONE, tx.CLAUDE_GEMINI, 2, 10, None, ""),
    ("polite agreement that moves on", tx.AGREE_AND_CONTINUE, tx.CLAUDE_GEMINI, 2, 10, None, ""),
    ("off-topic but not closing", tx.OFF_TOPIC, tx.CLAUDE_GEMINI, 2, 10, None, ""),
    ("a close before min_turns", tx.CALL_IT_A_DAY, tx.CLAUDE_GEMINI, 6, 10, None, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("texts", "speakers", "min_turns", "max_turns", "expected", "detail"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_first_end(
    texts: list[str],
    speakers: tuple[tuple[Provider, str], ...],
    min_turns: int,
    max_turns: int,
    expected: tuple[int, str] | None,
    detail: str,
) -> None:
    found = first_end(tx.transcript(texts, speakers), min_turns=min_turns, max_turns=max_turns)
    if expected is None:
        assert found is None, found
        return
    assert found is not None
    n, decision = found
    assert (n, decision.reason) == expected, decision
    assert detail in decision.detail


def test_the_detail_names_both_closers_and_their_words() -> None:
    decision = detect_end(tx.transcript(tx.CARS), min_turns=5, max_turns=10)
    assert decision == EndDecision(
        "natural_close",
        "gemini-3.5-flash and claude-sonnet-5-5 both closed ('where we've landed', 'to sum up'; "
        "'fair summary', 'thank you for a thoughtful and genuin...')",
    )


@pytest.mark.parametrize(
    ("text", "after_close", "closes"),
    [
        ("To sum up, we agree on pricing but still differ on outright bans.", False, True),
        ("I think this is a good place to stop. Thanks for the discussion!", False, True),
        ("Let's leave it there; I really appreciated this exchange.", False, True),
        ("Goodbye, and take care!", False, True),
        ("It's been a pleasure debating this with you.", False, True),
        ("We've covered a lot of ground today, so thanks for your time.", False, True),
        ("In conclusion, both of us would start with transit.", False, True),
        ("Shall we call it a day there?", False, True),
        ("Likewise!", True, True),
        ("Thank you too.", True, True),
        # Not closings:
        ("Likewise!", False, False),
        ("Thanks for the point, but you're missing the cost side.", False, False),
        ("Thanks. However, the cost side still worries me.", False, False),
        ("I don't think we've covered the cost side yet.", False, False),
        ("Before we wrap up, what about rural areas?", False, False),
        ("Thanks to cheap solar, prices fell by half.", False, False),
        ("Great discussion so far. What would change your mind?", False, False),
        ("Thanks, this was useful. What do you make of the tariff data?", False, False),
        (
            "In short, the data is mixed. Take Oslo first. Then Pontevedra, where retail grew. "
            "Paris tells a third story, and London a fourth.",
            False,
            False,
        ),
    ],
)
def test_is_closing(text: str, after_close: bool, closes: bool) -> None:
    assert is_closing(text, after_close=after_close) is closes


def test_a_short_exact_repeat_is_repetition() -> None:
    turns = tx.transcript(["Yes, exactly.", "Tell me more about the costs.", "Yes, exactly."])
    decision = detect_end(turns, min_turns=2, max_turns=10)
    assert decision == EndDecision("repetition", "turn 2 repeats turn 0")


def test_one_speaker_summing_up_alone_does_not_end_it() -> None:
    turns = tx.transcript(tx.CARS[:6])  # the summary, not yet answered
    assert detect_end(turns, min_turns=5, max_turns=10) is None


def test_limits_are_checked() -> None:
    turns = tx.transcript(tx.CARS)
    with pytest.raises(ValueError, match="min_turns <= max_turns"):
        detect_end(turns, min_turns=6, max_turns=5)
    with pytest.raises(ValueError):
        detect_end(turns, min_turns=0, max_turns=5)
    assert detect_end([], min_turns=1, max_turns=5) is None


def test_ending_of_a_finished_transcript() -> None:
    ending_cars = ending_of(tx.transcript(tx.CARS))
    assert ending_cars is not None and ending_cars.reason == "natural_close"
    ending_nuclear = ending_of(tx.transcript(tx.NUCLEAR))
    assert ending_nuclear is not None and ending_nuclear.reason == "max_turns"
    assert ending_of([]) is None


def test_simulated_conversations_end_when_both_sides_have_closed() -> None:
    """Against the simulator's own closing marker, over many seeded conversations."""
    from llmsim.dialogue import Turn, reply
    from llmsim.dialogue import is_closing as sim_is_closing

    topics = ["Should cities ban cars?", "Is remote work good for innovation?"]
    for seed in range(40):
        rng = random.Random(seed)
        topic = topics[seed % 2]
        turns: list[TranscriptTurn] = []
        decision = None
        while decision is None:
            provider, model = THREE[len(turns) % 2 + seed % 2]
            history = [Turn("user", f"Let's have a conversation about: {topic}")]
            history += [Turn("assistant" if t.model == model else "user", t.content) for t in turns]
            text = reply(system=f"You are discussing {topic}.", turns=history, model=model, rng=rng)
            turns.append(
                TranscriptTurn(
                    turn_index=len(turns),
                    speaker=model,
                    provider=provider,
                    model=model,
                    content=text,
                )
            )
            decision = detect_end(turns, min_turns=2, max_turns=16)
        closed = [sim_is_closing(t.content) for t in turns]
        both = next((i + 1 for i in range(1, len(turns)) if closed[i] and closed[i - 1]), None)
        if decision.reason == "natural_close":
            assert both == len(turns), (seed, decision)
        else:  # nothing else may pre-empt a close that already happened
            assert both is None, (seed, decision)


_TEXTS = st.one_of(
    st.text(max_size=200),
    st.sampled_from(tx.CARS + tx.NUCLEAR + tx.LOOPING + ["", "Thanks!", "Goodbye.", "Agreed."]),
)


@given(
    texts=st.lists(_TEXTS, max_size=14),
    min_turns=st.integers(1, 8),
    extra=st.integers(0, 6),
)
def test_never_ends_before_min_and_always_at_max(
    texts: list[str], min_turns: int, extra: int
) -> None:
    max_turns = min_turns + extra
    turns = tx.transcript(texts)
    decision = detect_end(turns, min_turns=min_turns, max_turns=max_turns)
    if len(turns) < min_turns:
        assert decision is None
    elif len(turns) >= max_turns:
        assert decision is not None
    if decision is not None:
        assert decision.detail
    assert detect_end(turns, min_turns=min_turns, max_turns=max_turns) == decision


def test_caches_do_not_change_answers() -> None:
    turns = tx.transcript(tx.CARS)
    warm = detect_end(turns, min_turns=5, max_turns=10)
    shingles.cache_clear()
    content_words.cache_clear()
    assert detect_end(turns, min_turns=5, max_turns=10) == warm
