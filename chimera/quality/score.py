"""quality.v2: a conversation's score, what it is made of, and whether to keep it.

:func:`score_v2` is pure, deterministic and cheap (well under 10 ms of CPU for eight turns).
It reads the turns once (:mod:`chimera.quality.text`), flags defects per turn
(:mod:`chimera.quality.defects`) and computes the conversation measures
(:mod:`chimera.quality.measures`).  The score is the weighted mean of the measures
(:data:`WEIGHTS`) times one factor per defect, ``1 - SEVERITY[d] * min(1, AMPLIFY * spoil)``,
where ``spoil`` is how much of the conversation the defect spoils (half the share of its
words, half the share of its turns, each weighted by the share of the turn at fault).  A
conversation is accepted when its score reaches ``min_quality`` (:data:`DEFAULT_MIN_QUALITY`)
no defect spoils at least :data:`REJECT_SPOIL` of it and no turn carries a
:data:`CATEGORICAL` defect (refusal, leakage, role confusion); otherwise ``reasons`` say why
(``low_score``, ``defect:<name>``).  Nothing about latency, cost or providers enters the
score, and fields a line does not carry (``ended_reason``, ``min_turns``/``max_turns``,
personas, topic) leave their part neutral.  Weights and thresholds were tuned on the ``tune``
half of ``tests/data/quality`` only, the categorical rule after an independently written set
showed such conversations kept (docs/quality.md has the figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from chimera.models.transcript import TranscriptTurn
from chimera.quality import measures
from chimera.quality.defects import DEFECTS, Flags, detect, strays
from chimera.quality.text import read

VERSION: Final = "quality.v2"

#: Weights of the measures (they sum to 1).
WEIGHTS: Final = {
    "diversity": 0.10,
    "relevance": 0.15,
    "uptake": 0.15,
    "progression": 0.15,
    "ending": 0.10,
    "development": 0.25,
    "length": 0.10,
}
#: How much each defect can take off the score, when it spoils the whole conversation.
SEVERITY: Final = {
    "empty": 0.9,
    "truncation": 0.6,
    "refusal": 0.9,
    "leakage": 0.9,
    "role_confusion": 0.8,
    "language_switch": 0.8,
    "pleasantry_only": 0.9,
    "sycophancy": 0.8,
    "repetition": 0.9,
    "echo": 0.9,
    "word_salad": 0.9,
    "off_topic": 0.8,
}
#: A defect's spoil is multiplied by this before it is capped at 1: half a conversation
#: spoiled is as bad as all of it.
AMPLIFY: Final = 2.0
#: A defect spoiling at least this share of a conversation rejects it whatever the score.
REJECT_SPOIL: Final = 0.15
#: Defects a dataset must never teach (a model trained on them refuses, leaks its prompt or
#: speaks for others): any turn flagged with one rejects the conversation, however little
#: of it the turn is, and their spoil counts ``CATEGORICAL_AMPLIFY`` times.
CATEGORICAL: Final = frozenset({"refusal", "leakage", "role_confusion"})
CATEGORICAL_AMPLIFY: Final = 4.0
#: The default threshold of ``accepted`` (and of ``--min-quality``), chosen on the tune half.
DEFAULT_MIN_QUALITY: Final = 0.6

#: What is not judged in a language other than en/es/fr/de.
CUE_CHECKS: Final = ("refusal", "leakage phrases", "pleasantry_only", "sycophancy", "closing cues")


class TurnQuality(BaseModel):
    """One turn's language and defect flags (defect -> share of the turn it spoils)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turn_index: int
    speaker: str
    language: str
    flags: dict[str, float]


class QualityV2Report(BaseModel):
    """A conversation's quality.v2: score, measures, defects, and whether it is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(ge=0, le=1)
    accepted: bool
    reasons: list[str]
    version: str = VERSION
    language: str
    breakdown: dict[str, float]
    defects: dict[str, float]
    weights: dict[str, float]
    turns: list[TurnQuality]
    flags: list[str]
    not_judged: list[str]
    ended_reason: str | None = None


def score_v2(
    turns: Sequence[TranscriptTurn],
    *,
    topic: str | None = None,
    ended_reason: str | None = None,
    min_turns: int | None = None,
    max_turns: int | None = None,
    personas: Mapping[str, str] | None = None,
    min_quality: float = DEFAULT_MIN_QUALITY,
) -> QualityV2Report:
    """Score ``turns`` (stated ``topic``, speaker -> ``personas``; None: not known)."""
    conv = read(turns, topic)
    flags = detect(conv, personas)
    breakdown = {
        "diversity": measures.diversity(conv),
        "relevance": measures.relevance(conv, strays(conv)),
        "uptake": measures.uptake(conv, flags),
        "progression": measures.progression(conv),
        "ending": measures.ending(conv, flags, ended_reason),
        "development": measures.development(conv, flags),
    }
    length = _length(len(turns), min_turns, max_turns)
    if length is not None:
        breakdown["length"] = length
    weights = {k: WEIGHTS[k] for k in breakdown}
    base = sum(weights[k] * v for k, v in breakdown.items()) / sum(weights.values())
    spoiled = _spoil(conv_words=[t.n_words for t in conv.turns], flags=flags)
    factor = 1.0
    for name, spoil in spoiled.items():
        amplify = CATEGORICAL_AMPLIFY if name in CATEGORICAL else AMPLIFY
        factor *= 1.0 - SEVERITY[name] * min(1.0, amplify * spoil)
    score = round(min(1.0, max(0.0, base * factor)), 4) if turns else 0.0
    reasons = [] if score >= min_quality else ["low_score"]
    reasons += [
        f"defect:{d}"
        for d, s in spoiled.items()
        if s >= REJECT_SPOIL or (d in CATEGORICAL and s > 0)
    ]
    conv_flags = [] if conv.judged or not turns else [f"{conv.language}_language"]
    return QualityV2Report(
        score=score,
        accepted=not reasons,
        reasons=reasons,
        language=conv.language,
        breakdown={k: round(v, 4) for k, v in breakdown.items()},
        defects={k: round(v, 4) for k, v in spoiled.items()},
        weights=weights,
        turns=[
            TurnQuality(turn_index=t.index, speaker=t.speaker, language=t.language, flags=f)
            for t, f in zip(conv.turns, flags, strict=True)
        ],
        flags=conv_flags,
        not_judged=[] if conv.judged else list(CUE_CHECKS),
        ended_reason=ended_reason,
    )


def _length(n: int, min_turns: int | None, max_turns: int | None) -> float | None:
    """Short of ``min_turns``: the share reached; past ``max_turns`` (a harness that did
    not stop it): halved.  Neither known: not measured."""
    if min_turns is None and max_turns is None:
        return None
    if min_turns is not None and n < min_turns:
        return n / min_turns
    if max_turns is not None and n > max_turns:
        return 0.5
    return 1.0


def _spoil(conv_words: list[int], flags: list[Flags]) -> dict[str, float]:
    total = sum(conv_words)
    n = len(flags)
    out: dict[str, float] = {}
    for name in DEFECTS:
        shares = [f.get(name, 0.0) for f in flags]
        if not any(shares):
            continue
        by_words = (
            sum(s * w for s, w in zip(shares, conv_words, strict=True)) / total if total else 0.0
        )
        by_turns = sum(shares) / n
        out[name] = 0.5 * by_words + 0.5 * by_turns
    return out
