"""CPU per conversation of quality.v2, beside quality.v1 on the same conversations.

Each repetition scores the same few hundred eight-turn conversations (about 120 words a
turn, every turn's text its own so that no cache helps either scorer) with ``score_v2``
and with v1's ``ending_of`` + ``score_conversation`` (what ``chimera score`` runs per line),
alternately, on this thread's CPU clock.  The figure is v2's median CPU milliseconds per
conversation, the baseline v1's; target: at most 10 ms per conversation.  Nothing of the
stack is used.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence

from bench.results import Outcome, Row, Target, paired
from bench.stack import Stack

NAME = "quality_cpu"
TURNS = 8
TURN_WORDS = 120
TARGET_MS = 10.0

_WORDS = [
    "cars", "cities", "streets", "buses", "trains", "cyclists", "shops", "rents", "noise", "air",
    "quality", "parking", "lanes", "transit", "commuters", "councils", "budgets", "evidence",
    "trial", "pilot", "ban", "charge", "tolls", "delivery", "vans", "suburbs", "centres",
    "children", "schools", "health", "costs", "benefits", "people", "change", "habits", "slowly",
    "the", "of", "and", "to", "in", "is", "that", "for", "with", "as", "but", "not", "we",
]  # fmt: skip


def _turn(rnd: random.Random, tag: str) -> str:
    out: list[str] = []
    while sum(len(s.split()) for s in out) < TURN_WORDS:
        words = rnd.choices(_WORDS, k=rnd.randint(8, 20))
        out.append(" ".join(words).capitalize() + rnd.choice([".", ".", ".", "?"]))
    return f"{tag} " + " ".join(out)


def _conversations(n: int, seed: int) -> list[list[object]]:
    from chimera.models.transcript import TranscriptTurn

    rnd = random.Random(seed)
    return [
        [
            TranscriptTurn(
                turn_index=i,
                speaker="ab"[i % 2],
                provider="anthropic" if i % 2 else "google",
                model="m",
                content=_turn(rnd, f"c{seed}x{c}t{i}"),
            )
            for i in range(TURNS)
        ]
        for c in range(n)
    ]


def _v1(turns: Sequence[object]) -> None:
    from chimera.conversation.ending import ending_of
    from chimera.conversation.quality import score_conversation

    ended = ending_of(turns)  # type: ignore[arg-type]
    score_conversation(turns, ended_reason=ended.reason if ended else None)  # type: ignore[arg-type]


def _v2(turns: Sequence[object]) -> None:
    from chimera.quality.score import score_v2

    score_v2(turns, topic="Should cities ban cars?")  # type: ignore[arg-type]


def _cpu_ms(score: Callable[[Sequence[object]], None], convs: list[list[object]]) -> float:
    costs = []
    for turns in convs:
        started = time.thread_time()
        score(turns)
        costs.append((time.thread_time() - started) * 1000)
    return statistics.median(costs)


def run(stack: Stack, quick: bool) -> Outcome:
    reps = 1 if quick else 3
    n = 50 if quick else 300
    _cpu_ms(_v2, _conversations(5, seed=-1))  # warm-up: imports, compiled patterns
    _cpu_ms(_v1, _conversations(5, seed=-2))
    v2, v1 = [], []
    for rep in range(reps):
        # Fresh texts for each scorer and repetition: the v1 detectors cache by text.
        v2.append(_cpu_ms(_v2, _conversations(n, seed=2 * rep)))
        v1.append(_cpu_ms(_v1, _conversations(n, seed=2 * rep + 1)))
    rows: list[Row] = [
        paired(
            NAME,
            f"quality.v2, {TURNS}-turn conversation of ~{TURNS * TURN_WORDS} words",
            "CPU ms",
            v2,
            baseline=("quality.v1 (ending + score)", "CPU ms", v1),
            target=Target("<=", TARGET_MS, on="figure"),
            details={"conversations_per_repetition": n},
        )
    ]
    return Outcome(rows, reps)
