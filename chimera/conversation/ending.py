"""Ending detection: should a conversation stop after its latest turn, and why.

:func:`detect_end` is called after each turn is appended.  It never ends a conversation
before ``min_turns`` and always ends it at ``max_turns``; in between it ends early on

``natural_close``
    The latest turn and the one before it, from another speaker, both close: they sum up,
    wrap up, thank each other for the conversation or say goodbye.  A goodbye on its own is
    enough.  Cues come from a curated table of closing expressions
    (:data:`~chimera.conversation.cues.CLOSING_CUES`),
    not from any one model's wording.
``repetition``
    The latest turn is a near-duplicate of an earlier one (word 3-gram shingles, Jaccard
    ``>= NEAR_DUPLICATE_JACCARD``), or each of the last ``RECYCLE_WINDOW`` turns is mostly
    made of 3-grams already said (``>= RECYCLE_CONTAINMENT``).
``convergence``
    The last two speakers agree, with no dissent in either turn and no open question: both
    agree and one of them states consensus ("we're on the same page"), or the two say nearly
    the same thing (content-word Jaccard ``>= CONVERGENCE_SIMILARITY``).  Plain agreement
    ("great point!") is not enough on its own: models open most replies with it and then
    move the argument on.

At ``max_turns`` the same checks run first, so a conversation that happens to close on its
last allowed turn reports ``natural_close`` rather than ``max_turns``.

A cue does not count when it sits before the last ``CLOSE_TAIL_SENTENCES`` sentences (the
turn went on after it), nor when :mod:`chimera.conversation.cues` rules it out: negated or
deferred ("I don't think we've covered …", "before we wrap up …"), a thanks or an agreement
that pivots ("thanks for the point, but …"), or a turn ending with a question that is not
itself a closing proposal ("shall we call it a day?" is one; the speaker otherwise expects
an answer).

Everything is a pure function of the text: deterministic, and about a millisecond per call
for 20 turns of 200 words (a few ms with cold caches).  The cost is linear in the text's
length whatever the text (a run of spaces, one endless sentence of "thanks"): see
:mod:`chimera.conversation.cues` for the bounds on cue matching and
:mod:`chimera.conversation.text` for the words, sentences and similarities it reads.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from chimera.conversation.cues import (
    AGREE_RE,
    CLOSING_CUES,
    CONSENSUS_RE,
    Cue,
    asks,
    dissents,
    find_cues,
)
from chimera.conversation.text import (
    MIN_SHINGLES,
    containment,
    content_words,
    jaccard,
    sentences,
    shingles,
    words,
)
from chimera.models.transcript import TranscriptTurn

EndReason = Literal["natural_close", "repetition", "convergence", "max_turns"]

# --- thresholds ----------------------------------------------------------------------------

#: Latest turn vs any earlier turn: at or above this it is a near-duplicate (a copy with a
#: few words changed stays above 0.6; a reply that quotes a clause back stays below 0.2).
NEAR_DUPLICATE_JACCARD: Final = 0.6
#: "Recycling": each of the last RECYCLE_WINDOW turns has at least this share of its
#: shingles already said earlier in the conversation.
RECYCLE_WINDOW: Final = 3
RECYCLE_CONTAINMENT: Final = 0.6
#: Last two turns (different speakers) sharing this much of their content vocabulary are
#: saying the same thing.
CONVERGENCE_SIMILARITY: Final = 0.5
#: ... provided each has at least this many content words.
MIN_CONTENT_WORDS: Final = 5
#: A turn closes when its cue weights (best per category) add up to at least this.
CLOSE_THRESHOLD: Final = 1.0
#: Only cues in the last few sentences of a turn count: a closing remark followed by
#: paragraphs of argument is not a close.
CLOSE_TAIL_SENTENCES: Final = 3


@dataclass(frozen=True)
class EndDecision:
    """Why a conversation ends now: the rule that fired and what triggered it."""

    reason: EndReason
    detail: str


# --- closing ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _closing(text: str, after_close: bool) -> tuple[float, tuple[Cue, ...]]:
    sents = sentences(text)
    tail = sents[-CLOSE_TAIL_SENTENCES:]
    patterns = [p for p in CLOSING_CUES if after_close or p[0] != "reply"]
    cues = find_cues(tail, patterns)
    if asks(tail, cues):
        return 0.0, ()
    best: dict[str, float] = {}
    for cue in cues:
        best[cue.category] = max(best.get(cue.category, 0.0), cue.weight)
    return sum(best.values()), tuple(cues)


def is_closing(text: str, *, after_close: bool = False) -> bool:
    """Whether ``text`` closes the conversation (``after_close``: it answers a closing turn)."""
    return _closing(text, after_close)[0] >= CLOSE_THRESHOLD


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _cue_list(cues: Sequence[Cue], limit: int = 3) -> str:
    seen = list(dict.fromkeys(f"'{_clip(c.text)}'" for c in cues))
    return ", ".join(seen[:limit])


def _natural_close(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    window = turns[-3:]
    closed = False
    scored: list[tuple[float, tuple[Cue, ...]]] = []
    for turn in window:
        strength, cues = _closing(turn.content, closed)
        closed = strength >= CLOSE_THRESHOLD
        scored.append((strength, cues))
    latest, (strength, cues) = turns[-1], scored[-1]
    if strength < CLOSE_THRESHOLD:
        return None
    if any(c.category == "farewell" for c in cues):
        return EndDecision("natural_close", f"{latest.speaker} said goodbye ({_cue_list(cues)})")
    if len(turns) >= 2 and turns[-2].speaker != latest.speaker:
        prev_strength, prev_cues = scored[-2]
        if prev_strength >= CLOSE_THRESHOLD:
            return EndDecision(
                "natural_close",
                f"{turns[-2].speaker} and {latest.speaker} both closed "
                f"({_cue_list(prev_cues, 2)}; {_cue_list(cues, 2)})",
            )
    return None


# --- repetition ----------------------------------------------------------------------------


def _repetition(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    latest = turns[-1]
    latest_sh = shingles(latest.content)
    latest_norm = " ".join(words(latest.content))
    if latest_norm:
        for earlier in turns[:-1]:
            if len(latest_sh) < MIN_SHINGLES:
                if " ".join(words(earlier.content)) == latest_norm:
                    return EndDecision(
                        "repetition", f"turn {latest.turn_index} repeats turn {earlier.turn_index}"
                    )
                continue
            similarity = jaccard(latest_sh, shingles(earlier.content))
            if similarity >= NEAR_DUPLICATE_JACCARD:
                return EndDecision(
                    "repetition",
                    f"turn {latest.turn_index} ({latest.speaker}) near-duplicates turn "
                    f"{earlier.turn_index} ({earlier.speaker}): 3-gram Jaccard {similarity:.2f}",
                )
    if len(turns) <= RECYCLE_WINDOW:
        return None
    shares: list[float] = []
    for i in reversed(range(len(turns) - RECYCLE_WINDOW, len(turns))):  # latest first: cheap exit
        sh = shingles(turns[i].content)
        if len(sh) < MIN_SHINGLES:
            return None
        said: frozenset[str] = frozenset().union(*(shingles(t.content) for t in turns[:i]))
        share = containment(sh, said)
        if share < RECYCLE_CONTAINMENT:
            return None
        shares.insert(0, share)
    return EndDecision(
        "repetition",
        f"the last {RECYCLE_WINDOW} turns recycle earlier content "
        f"({', '.join(f'{s:.0%}' for s in shares)} of their 3-grams already said)",
    )


# --- convergence ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _agreement(text: str) -> tuple[int, str]:
    """0 (none or dissent), 1 (agrees), 2 (states consensus); and the cue."""
    sents = sentences(text)
    if dissents(text):
        return 0, ""
    agree_pats = (("consensus", 2.0, CONSENSUS_RE), ("agree", 1.0, AGREE_RE))
    cues = find_cues(sents, agree_pats)
    if not cues or asks(sents, cues):
        return 0, ""
    top = max(cues, key=lambda c: c.weight)
    return int(top.weight), top.text


def _convergence(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    if len(turns) < 2 or turns[-1].speaker == turns[-2].speaker:
        return None
    prev, latest = turns[-2], turns[-1]
    if asks(sentences(latest.content), ()):
        return None
    (lvl_prev, cue_prev), (lvl_latest, cue_latest) = (
        _agreement(prev.content),
        _agreement(latest.content),
    )
    if lvl_prev and lvl_latest and max(lvl_prev, lvl_latest) >= 2:
        return EndDecision(
            "convergence",
            f"{prev.speaker} and {latest.speaker} agree ('{cue_prev}'; '{cue_latest}')",
        )
    a, b = content_words(prev.content), content_words(latest.content)
    if min(len(a), len(b)) >= MIN_CONTENT_WORDS:
        similarity = jaccard(a, b)
        no_dissent = not (dissents(prev.content) or dissents(latest.content))
        if similarity >= CONVERGENCE_SIMILARITY and no_dissent:
            return EndDecision(
                "convergence",
                f"{prev.speaker} and {latest.speaker} say the same thing "
                f"(content-word Jaccard {similarity:.2f})",
            )
    return None


# --- the decision -----------------------------------------------------------------------------


def detect_end(
    turns: Sequence[TranscriptTurn], *, min_turns: int, max_turns: int
) -> EndDecision | None:
    """Whether the conversation ends after ``turns[-1]``, and why; None to go on."""
    if min_turns < 1 or max_turns < min_turns:
        raise ValueError(f"need 1 <= min_turns <= max_turns, got {min_turns} and {max_turns}")
    n = len(turns)
    if n < min_turns or n == 0:
        return None
    decision = _natural_close(turns) or _repetition(turns) or _convergence(turns)
    if decision is not None:
        return decision
    if n >= max_turns:
        return EndDecision("max_turns", f"reached max_turns ({max_turns})")
    return None


def ending_of(turns: Sequence[TranscriptTurn]) -> EndDecision | None:
    """How a finished transcript ended, judged from its last turns alone.

    For transcripts that do not say (data from elsewhere): the natural reason if the last
    turns close, repeat or converge, else ``max_turns`` (it stopped without ending
    itself); None for an empty transcript.
    """
    if not turns:
        return None
    return detect_end(turns, min_turns=len(turns), max_turns=len(turns))
