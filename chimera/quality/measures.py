"""Conversation measures of quality.v2, each in [0, 1].

``diversity``
    Lexical diversity: distinct word bigrams over all bigrams (distinct-2) and the zlib
    compression ratio of the whole text, each rescaled between a floor and a ceiling.
``relevance``
    The share of contentful turns that stay on the stated topic (share its words, or two of
    the words of the turns on topic before them); 1 when no topic is known.
``uptake``
    For each reply to another speaker: the content words it shares with the turn it answers,
    over the shorter of the two (so length does not buy it), full marks at UPTAKE_FULL;
    times the share of the reply that does not copy that turn.
``progression``
    New content per turn: the share of each turn's content words not said before, full
    marks at PROGRESSION_FULL.
``ending``
    How it ended: the ``ended_reason`` when the line carries one, else read from the last
    turns (a close, a cut-off or blank last turn, a question left open).
``development``
    How much sound content there is: content words in turns free of defects, full marks at
    DEVELOPMENT_FULL (a two-turn exchange teaches less than a full discussion).

None rewards overlap for its own sake: every overlap is a share, saturating, and copying
counts against uptake.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Final

from chimera.quality import cues
from chimera.quality.defects import Flags, novelty
from chimera.quality.text import Conversation

DISTINCT2_FLOOR: Final = 0.5
DISTINCT2_CEIL: Final = 0.85
COMPRESSION_FLOOR: Final = 0.2
COMPRESSION_CEIL: Final = 0.45
UPTAKE_FULL: Final = 0.2
PROGRESSION_FULL: Final = 0.5
DEVELOPMENT_FULL: Final = 60
#: ``ending`` by ended_reason; another reason (or none) is read from the text.
ENDING: Final = {
    "natural_close": 1.0,
    "convergence": 1.0,
    "max_turns": 0.7,
    "timeout": 0.7,
    "repetition": 0.2,
}
ENDING_NEUTRAL: Final = 0.7
ENDING_CLOSED: Final = 1.0
ENDING_OPEN_QUESTION: Final = 0.4
ENDING_BROKEN: Final = 0.1


def _scale(x: float, lo: float, hi: float) -> float:
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def diversity(conv: Conversation) -> float:
    ws = [w for t in conv.turns for w in t.words]
    if len(ws) < 2:
        return 0.0
    bigrams = list(itertools.pairwise(ws))
    d2 = _scale(len(set(bigrams)) / len(bigrams), DISTINCT2_FLOOR, DISTINCT2_CEIL)
    raw = "\n".join(t.text for t in conv.turns).encode()
    ratio = len(zlib.compress(raw, 6)) / len(raw)
    return 0.5 * d2 + 0.5 * _scale(ratio, COMPRESSION_FLOOR, COMPRESSION_CEIL)


def relevance(conv: Conversation, strays: list[bool]) -> float:
    if not conv.topic_stems:
        return 1.0
    contentful = sum(1 for t in conv.turns if len(t.stems - cues.FILLER_WORDS) >= 6)
    return 1.0 - sum(strays) / contentful if contentful else 1.0


def uptake(conv: Conversation, flags: list[Flags]) -> float:
    pairs = []
    for i in range(1, len(conv.turns)):
        prev, turn = conv.turns[i - 1], conv.turns[i]
        if prev.speaker == turn.speaker:
            continue
        a, b = prev.stems - cues.FILLER_WORDS, turn.stems - cues.FILLER_WORDS
        shared = len(a & b) / min(len(a), len(b)) if a and b else 0.0
        copied = flags[i].get("echo", 0.0)
        pairs.append(_scale(shared, 0.0, UPTAKE_FULL) * (1.0 - copied))
    return sum(pairs) / len(pairs) if pairs else 0.5


def progression(conv: Conversation) -> float:
    values = [n for n in novelty(conv) if n is not None]
    if not values:
        return 0.0
    return sum(_scale(n, 0.0, PROGRESSION_FULL) for n in values) / len(values)


def ending(conv: Conversation, flags: list[Flags], ended_reason: str | None) -> float:
    if ended_reason in ENDING:
        base = ENDING[ended_reason]
    elif not conv.turns:
        return 0.0
    else:
        base = ENDING_NEUTRAL
        tail = conv.turns[-2:]
        if conv.judged and any(cues.CLOSING[conv.language].search(t.text) for t in tail):
            base = ENDING_CLOSED
    last, last_flags = conv.turns[-1], flags[-1]
    if "empty" in last_flags or "truncation" in last_flags:
        return min(base, ENDING_BROKEN)
    if last.text.rstrip().endswith("?"):
        return min(base, ENDING_OPEN_QUESTION)
    return base


def development(conv: Conversation, flags: list[Flags]) -> float:
    sound: set[str] = set()
    for turn, fl in zip(conv.turns, flags, strict=True):
        if sum(fl.values()) < 0.5:
            sound |= turn.stems - cues.FILLER_WORDS
    return min(1.0, len(sound) / DEVELOPMENT_FULL)
