"""Quality score of a conversation, with the breakdown that explains it.

:func:`score_conversation` is pure and deterministic.  It rates five components in [0, 1]
and returns their weighted mean (:data:`WEIGHTS`), stamped with :data:`VERSION` so that
scores stay comparable over time: change a rule or a weight, bump the version.

``length``
    1 inside the ideal band: from ``min_turns`` (at least ``LENGTH_FLOOR_TURNS``) to three
    turns more, within ``max_turns`` -- 5 to 8 turns for the default 5-10 request.  Shorter
    falls off as ``(n / lo) ** 2``; longer falls linearly to ``LENGTH_AT_CAP`` at
    ``max_turns`` and on at the same slope, down to ``LENGTH_MIN_LONG``.
``diversity``
    Half model diversity (two providers 1, two models of one provider 0.7, one model with
    two personas 0.3, one speaker 0), a quarter speaker changes between consecutive turns, a
    quarter balance (no one speaker taking most of the turns).
``response_quality``
    Mean over turns of length x originality x latency.  Length: 0 for an empty turn,
    rising to 1 at ``FULL_TURN_WORDS`` words (a sign-off is exempt).  Originality: falls from 1
    when ``REPEAT_OK`` of the turn's word 3-grams were already said earlier to 0 at
    ``REPEAT_BAD``, and from 1 at ``SELF_REPEAT_OK`` distinct 3-grams within the turn to 0 at
    ``SELF_REPEAT_BAD``.  Latency: 1 up to ``SLOW_LATENCY_MS``, down to ``VERY_SLOW_FACTOR``
    at ``VERY_SLOW_LATENCY_MS``.
``flow``
    ``UPTAKE_WEIGHT`` for turns answering each other -- a reply to another speaker shares
    content words with what it answers (``UPTAKE_WORDS`` for full marks) and takes up a
    question put to it; a speaker following itself scores ``SAME_SPEAKER_PAIR`` -- and the
    rest for staying on topic: the share of each turn's content words used elsewhere in the
    conversation (``ON_TOPIC_SHARE`` for full marks).
``completion``
    How it ended (:data:`COMPLETION`): naturally (``natural_close``, ``convergence``) 1,
    stopped by a budget (``max_turns``, ``timeout``) 0.6, ``repetition`` 0.3, failed or
    unknown (None) 0 -- halved when the last turn looks cut off mid-sentence.

The report also records the ``ended_reason`` it was given, so a stored report says what it
was computed from.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from chimera.conversation.ending import is_closing
from chimera.conversation.text import (
    MIN_SHINGLES,
    containment,
    content_words,
    sentences,
    shingles,
    words,
)
from chimera.models.transcript import TranscriptTurn

VERSION: Final = "quality.v1"

#: Component weights (they sum to 1).  What the turns say and how they connect matter most
#: for training data; a conversation too short to teach anything comes next; diversity and
#: how it ended are properties of the whole.
WEIGHTS: Final = {
    "length": 0.20,
    "diversity": 0.15,
    "response_quality": 0.25,
    "flow": 0.25,
    "completion": 0.15,
}

#: ``completion`` by ending reason; anything else (a failure, None) scores 0.
COMPLETION: Final = {
    "natural_close": 1.0,
    "convergence": 1.0,
    "max_turns": 0.6,
    "timeout": 0.6,
    "repetition": 0.3,
}
#: A last turn that stops mid-sentence (no closing punctuation) was likely truncated.
TRUNCATED_FACTOR: Final = 0.5

# length
LENGTH_FLOOR_TURNS: Final = 4  # the ideal band never starts below this many turns
IDEAL_EXTRA_TURNS: Final = 3  # the band runs from its start to this many turns more
LENGTH_AT_CAP: Final = 0.7
LENGTH_MIN_LONG: Final = 0.3

# response_quality
FULL_TURN_WORDS: Final = 25
SHORT_TURN_FLOOR: Final = 0.15  # a one-word turn
CLOSING_TURN_FLOOR: Final = 0.9  # "Thanks, I enjoyed this." is short for a good reason
REPEAT_OK: Final = 0.3
REPEAT_BAD: Final = 0.8
SELF_REPEAT_OK: Final = 0.8
SELF_REPEAT_BAD: Final = 0.5
SHORT_DUPLICATE_FACTOR: Final = 0.5
SLOW_LATENCY_MS: Final = 30_000.0
VERY_SLOW_LATENCY_MS: Final = 120_000.0
VERY_SLOW_FACTOR: Final = 0.5

# flow
UPTAKE_WEIGHT: Final = 0.6
UPTAKE_WORDS: Final = 2
SAME_SPEAKER_PAIR: Final = 0.3
UNANSWERED_FACTOR: Final = 0.6
ON_TOPIC_SHARE: Final = 0.25

_ANSWER_START_RE = re.compile(
    r"^(?:yes|no|yeah|nope|sure|absolutely|definitely|probably|maybe|perhaps|it depends|well"
    r"|honestly|i think|i'd|i would|i'm|i am|because|good question|great question)\b"
)
_CUT_OFF_RE = re.compile(r"[\w,;:\-\u2013\u2014(]\s*$")


class QualityReport(BaseModel):
    """A conversation's quality: the weighted ``score`` and the components it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(ge=0, le=1)
    breakdown: dict[str, float]
    weights: dict[str, float]
    version: str = VERSION
    ended_reason: str | None = None


def score_conversation(
    turns: Sequence[TranscriptTurn],
    *,
    ended_reason: str | None,
    min_turns: int = 5,
    max_turns: int = 10,
) -> QualityReport:
    """Score ``turns``; ``ended_reason`` is how the conversation ended (None: failed/unknown)."""
    closing = _closing_flags(turns)
    breakdown = {
        "length": _length(len(turns), min_turns, max_turns),
        "diversity": _diversity(turns),
        "response_quality": _response_quality(turns, closing),
        "flow": _flow(turns, closing),
        "completion": _completion(turns, ended_reason),
    }
    score = sum(WEIGHTS[k] * v for k, v in breakdown.items())
    return QualityReport(
        score=_unit(round(score, 4)),
        breakdown={k: round(v, 4) for k, v in breakdown.items()},
        weights=dict(WEIGHTS),
        ended_reason=ended_reason,
    )


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _closing_flags(turns: Sequence[TranscriptTurn]) -> list[bool]:
    flags: list[bool] = []
    for turn in turns:
        flags.append(is_closing(turn.content, after_close=bool(flags and flags[-1])))
    return flags


# --- components -------------------------------------------------------------------------------


def _length(n: int, min_turns: int, max_turns: int) -> float:
    lo = max(min_turns, LENGTH_FLOOR_TURNS)
    hi = max(lo, min(max_turns, lo + IDEAL_EXTRA_TURNS))
    if n < lo:
        return (n / lo) ** 2
    if n <= hi:
        return 1.0
    span = max_turns - hi if max_turns > hi else IDEAL_EXTRA_TURNS
    slope = (1.0 - LENGTH_AT_CAP) / span
    return max(LENGTH_MIN_LONG, 1.0 - slope * (n - hi))


def _diversity(turns: Sequence[TranscriptTurn]) -> float:
    n = len(turns)
    if n == 0:
        return 0.0
    speakers = Counter(t.speaker for t in turns)
    models = {(t.provider, t.model) for t in turns}
    providers = {t.provider for t in turns}
    if len(speakers) < 2:
        model_score = 0.0
    elif len(providers) >= 2:
        model_score = 1.0
    elif len(models) >= 2:
        model_score = 0.7
    else:
        model_score = 0.3
    if n < 2 or len(speakers) < 2:
        return 0.5 * model_score
    switches = sum(a.speaker != b.speaker for a, b in itertools.pairwise(turns)) / (n - 1)
    k = len(speakers)
    balance = (1 - max(speakers.values()) / n) / (1 - 1 / k)
    return 0.5 * model_score + 0.25 * switches + 0.25 * _unit(balance)


def _response_quality(turns: Sequence[TranscriptTurn], closing: Sequence[bool]) -> float:
    if not turns:
        return 0.0
    said: set[str] = set()
    seen_texts: set[str] = set()
    total = 0.0
    for turn, is_close in zip(turns, closing, strict=True):
        ws = words(turn.content)
        norm = " ".join(ws)
        sh = shingles(turn.content)
        total += (
            _turn_length(len(ws), is_close)
            * _originality(ws, sh, said, norm in seen_texts)
            * _latency(turn.latency_ms)
        )
        said |= sh
        if norm:
            seen_texts.add(norm)
    return total / len(turns)


def _turn_length(n_words: int, is_close: bool) -> float:
    if n_words == 0:
        return 0.0
    rising = SHORT_TURN_FLOOR + (1 - SHORT_TURN_FLOOR) * (n_words - 1) / (FULL_TURN_WORDS - 1)
    return max(min(1.0, rising), CLOSING_TURN_FLOOR if is_close else 0.0)


def _originality(
    ws: Sequence[str], sh: frozenset[str], said: set[str], duplicate_text: bool
) -> float:
    if len(sh) < MIN_SHINGLES:
        return SHORT_DUPLICATE_FACTOR if duplicate_text else 1.0
    repeated = containment(sh, said)
    earlier = 1 - _unit((repeated - REPEAT_OK) / (REPEAT_BAD - REPEAT_OK))
    distinct = len(sh) / max(1, len(ws) - 2)  # 3-grams in the turn vs distinct ones
    within = _unit((distinct - SELF_REPEAT_BAD) / (SELF_REPEAT_OK - SELF_REPEAT_BAD))
    return min(earlier, within)


def _latency(latency_ms: float) -> float:
    if latency_ms <= SLOW_LATENCY_MS:
        return 1.0
    over = (latency_ms - SLOW_LATENCY_MS) / (VERY_SLOW_LATENCY_MS - SLOW_LATENCY_MS)
    return 1.0 - (1.0 - VERY_SLOW_FACTOR) * _unit(over)


def _flow(turns: Sequence[TranscriptTurn], closing: Sequence[bool]) -> float:
    if len(turns) < 2:
        return 0.0
    vocab = [content_words(t.content) for t in turns]
    pairs = []
    for i in range(1, len(turns)):
        if turns[i].speaker == turns[i - 1].speaker:
            pairs.append(SAME_SPEAKER_PAIR)
        elif closing[i] and closing[i - 1]:
            pairs.append(1.0)  # a sign-off answering a sign-off
        else:
            uptake = min(1.0, len(vocab[i] & vocab[i - 1]) / UPTAKE_WORDS)
            answered = _answers(turns[i - 1].content, turns[i].content, vocab[i])
            pairs.append(uptake * (1.0 if answered else UNANSWERED_FACTOR))
    counts = Counter(w for v in vocab for w in v)
    topical = []
    for v, is_close in zip(vocab, closing, strict=True):
        if is_close:
            topical.append(1.0)
        elif not v:
            topical.append(0.0)
        else:
            # A word in the conversation's vocabulary is one some other turn uses too.
            shared = sum(1 for w in v if counts[w] > 1)
            topical.append(min(1.0, shared / len(v) / ON_TOPIC_SHARE))
    mean_pairs = sum(pairs) / len(pairs)
    mean_topical = sum(topical) / len(topical)
    return UPTAKE_WEIGHT * mean_pairs + (1 - UPTAKE_WEIGHT) * mean_topical


def _answers(previous: str, reply: str, reply_vocab: frozenset[str]) -> bool:
    """Whether ``reply`` takes up the questions ``previous`` asked (True when it asked none)."""
    questions = [s for s in sentences(previous) if s.rstrip("\"') ").endswith("?")]
    if not questions:
        return True
    asked = frozenset().union(*(content_words(q) for q in questions))
    first = sentences(reply)[:1]
    return bool(asked & reply_vocab) or bool(first and _ANSWER_START_RE.match(first[0]))


def _completion(turns: Sequence[TranscriptTurn], ended_reason: str | None) -> float:
    base = COMPLETION.get(ended_reason or "", 0.0)
    if turns and _CUT_OFF_RE.search(turns[-1].content):
        return base * TRUNCATED_FACTOR
    return base
