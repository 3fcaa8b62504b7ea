"""Quality scores: a good conversation beats every kind of bad one, and scores stay in bounds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chimera.conversation.quality import (
    COMPLETION,
    VERSION,
    WEIGHTS,
    QualityReport,
    score_conversation,
)
from chimera.models import TranscriptTurn
from tests.chimera.conversation import transcripts as tx

COMPONENTS = ("length", "diversity", "response_quality", "flow", "completion")


def good() -> QualityReport:
    return score_conversation(tx.transcript(tx.CARS), ended_reason="natural_close")


def _emptied() -> list[TranscriptTurn]:
    turns = tx.transcript(tx.CARS)
    return [
        t.model_copy(update={"content": "" if i % 2 else t.content}) for i, t in enumerate(turns)
    ]


def _cut_off() -> list[TranscriptTurn]:
    turns = tx.transcript(tx.CARS[:5])
    last = turns[-1]
    return [*turns[:-1], last.model_copy(update={"content": last.content[:120]})]


BAD: dict[str, tuple[Callable[[], QualityReport], str]] = {
    # name: (scored bad conversation, the component that should explain it)
    "too short": (
        lambda: score_conversation(tx.transcript(tx.CARS[:2]), ended_reason="natural_close"),
        "length",
    ),
    "one model talking to itself": (
        lambda: score_conversation(
            tx.transcript(tx.CARS, speakers=[tx.CLAUDE]), ended_reason="natural_close"
        ),
        "diversity",
    ),
    "empty turns": (
        lambda: score_conversation(_emptied(), ended_reason="natural_close"),
        "response_quality",
    ),
    "repetitive": (
        lambda: score_conversation(tx.transcript(tx.RECYCLING), ended_reason="repetition"),
        "response_quality",
    ),
    "off-topic non-sequiturs": (
        lambda: score_conversation(tx.transcript(tx.OFF_TOPIC), ended_reason="max_turns"),
        "flow",
    ),
    "cut off mid-sentence": (
        lambda: score_conversation(_cut_off(), ended_reason="max_turns"),
        "completion",
    ),
    "failed": (
        lambda: score_conversation(tx.transcript(tx.CARS), ended_reason=None),
        "completion",
    ),
    "very slow turns": (
        lambda: score_conversation(
            tx.transcript(tx.CARS, latency_ms=150_000), ended_reason="natural_close"
        ),
        "response_quality",
    ),
}


def test_a_good_conversation_scores_high() -> None:
    report = good()
    assert report.score >= 0.95
    assert min(report.breakdown.values()) >= 0.9


@pytest.mark.parametrize("kind", BAD)
def test_a_good_conversation_beats_a_bad_one(kind: str) -> None:
    make_bad, culprit = BAD[kind]
    bad, ref = make_bad(), good()
    assert ref.score - bad.score >= 0.1, (bad.score, bad.breakdown)
    assert ref.breakdown[culprit] - bad.breakdown[culprit] >= 0.3, bad.breakdown


@pytest.mark.parametrize(
    ("texts", "reason"),
    [(tx.NUCLEAR, "max_turns"), (tx.CALL_IT_A_DAY, "natural_close"), (tx.CONVERGE, "convergence")],
)
def test_other_realistic_conversations_score_well(texts: list[str], reason: str) -> None:
    assert score_conversation(tx.transcript(texts), ended_reason=reason).score >= 0.85


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("natural_close", 1.0),
        ("convergence", 1.0),
        ("max_turns", 0.6),
        ("timeout", 0.6),
        ("repetition", 0.3),
        (None, 0.0),
        ("failed", 0.0),
    ],
)
def test_completion_by_ending_reason(reason: str | None, expected: float) -> None:
    report = score_conversation(tx.transcript(tx.CARS), ended_reason=reason)
    assert report.breakdown["completion"] == expected
    assert report.ended_reason == reason


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, 0.0),
        (1, 0.04),
        (2, 0.16),
        (4, 0.64),
        (5, 1.0),
        (8, 1.0),
        (9, 0.85),
        (10, 0.7),
        (12, 0.4),
    ],
)
def test_length_is_best_from_five_to_eight_turns(n: int, expected: float) -> None:
    turns = tx.transcript((tx.CARS * 2)[:n])
    report = score_conversation(turns, ended_reason="natural_close", min_turns=5, max_turns=10)
    assert report.breakdown["length"] == pytest.approx(expected, abs=0.01)


def test_length_follows_the_request() -> None:
    turns = tx.transcript(tx.CARS[:4])
    short_request = score_conversation(turns, ended_reason="max_turns", min_turns=2, max_turns=4)
    assert short_request.breakdown["length"] == 1.0  # never below four turns for full marks
    two = score_conversation(turns[:2], ended_reason="max_turns", min_turns=2, max_turns=4)
    assert two.breakdown["length"] == 0.25


def test_diversity_rewards_different_providers_then_models() -> None:
    def diversity(speakers: list[tuple[tx.Provider, str]]) -> float:
        turns = tx.transcript(tx.CARS, speakers=speakers)
        return score_conversation(turns, ended_reason="natural_close").breakdown["diversity"]

    providers = diversity([tx.CLAUDE, tx.GEMINI])
    models = diversity([tx.CLAUDE, ("anthropic", "claude-haiku-5")])
    personas = [
        t.model_copy(update={"speaker": f"claude-{'ab'[t.turn_index % 2]}"})
        for t in tx.transcript(tx.CARS, speakers=[tx.CLAUDE])
    ]
    same_model = score_conversation(personas, ended_reason="natural_close").breakdown["diversity"]
    alone = diversity([tx.CLAUDE])
    assert providers > models > same_model > alone == 0.0


def test_one_speaker_dominating_lowers_diversity() -> None:
    turns = tx.transcript(tx.CARS, speakers=[tx.CLAUDE, tx.CLAUDE, tx.CLAUDE, tx.GEMINI])
    dominated = score_conversation(turns, ended_reason="natural_close")
    assert dominated.breakdown["diversity"] < good().breakdown["diversity"] - 0.2


def test_an_unanswered_question_lowers_flow() -> None:
    texts = [
        tx.CARS[0],  # ends with a question about restricting cars
        "Congestion pricing in London cut traffic by a third in its first years, and the "
        "revenue paid for buses.",
    ]
    answered = [tx.CARS[0], tx.CARS[1]]
    ignored = score_conversation(tx.transcript(texts), ended_reason="max_turns")
    taken_up = score_conversation(tx.transcript(answered), ended_reason="max_turns")
    assert taken_up.breakdown["flow"] > ignored.breakdown["flow"]


def test_the_report_is_versioned_and_frozen() -> None:
    report = good()
    assert report.version == VERSION == "quality.v1"
    assert report.weights == WEIGHTS
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert tuple(report.breakdown) == COMPONENTS
    expected = sum(WEIGHTS[k] * v for k, v in report.breakdown.items())
    assert report.score == pytest.approx(expected, abs=1e-3)
    assert set(COMPLETION) >= {"natural_close", "convergence", "max_turns", "repetition"}
    with pytest.raises(ValidationError):
        report.score = 0.0  # type: ignore[misc]
    assert QualityReport.model_validate(report.model_dump(mode="json")) == report


_TURN = st.builds(
    TranscriptTurn,
    turn_index=st.integers(0, 100),
    speaker=st.sampled_from(["a", "b", "c", "claude", ""]),
    provider=st.sampled_from(["anthropic", "google", "openai"]),
    model=st.sampled_from(["m1", "m2", "claude-sonnet-5-5"]),
    content=st.one_of(
        st.text(max_size=300),
        st.sampled_from([*tx.CARS, *tx.OFF_TOPIC, "", "?", "Thanks!", "a a a a a a a a a a"]),
    ),
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**6),
    latency_ms=st.floats(0, 1e7, allow_nan=False),
)


@given(
    turns=st.lists(_TURN, max_size=16),
    reason=st.sampled_from(
        [None, "natural_close", "convergence", "max_turns", "repetition", "timeout", "weird"]
    ),
    min_turns=st.integers(-2, 20),
    max_turns=st.integers(-2, 20),
)
def test_scores_are_bounded_and_stable(
    turns: list[TranscriptTurn], reason: str | None, min_turns: int, max_turns: int
) -> None:
    report = score_conversation(
        turns, ended_reason=reason, min_turns=min_turns, max_turns=max_turns
    )
    assert 0.0 <= report.score <= 1.0
    assert tuple(report.breakdown) == COMPONENTS
    assert all(0.0 <= v <= 1.0 for v in report.breakdown.values()), report.breakdown
    again = score_conversation(turns, ended_reason=reason, min_turns=min_turns, max_turns=max_turns)
    assert again == report
