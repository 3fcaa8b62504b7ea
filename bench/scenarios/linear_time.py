"""Cost per MiB of reading hostile text, beside ordinary text of the same size.

Three readers of text an event's author (or a file's) chose, each fed the shapes that once
made it quadratic and, alternately, ordinary text of the same size:

* **masking** (``Redactor.redact``, run over error messages and log lines): ``a.``,
  ``a://b:``, ``key=`` and ``bearer`` repeated, runs of one character, at 1 MiB; the
  baseline is log lines that name keys and tokens (so both pass through every pattern).
* **codec** (``parse_json_object`` + ``validate_event``, what the bridge and
  ``/orchestrator/analyze`` do with a body): a half-MiB key over a long list, 80,000
  unknown keys, a MiB of brackets, long keys nested to the depth limit; the baseline is a
  valid analysis event of 2,000 segments.
* **detectors** (``ending_of`` + ``score_conversation``, what ``chimera score`` runs per
  line): a turn of 256 KiB that is one run of spaces, one endless sentence of cues,
  ``a.`` repeated or negations and pivots; the baseline is a turn of varied prose.

A figure is the worst shape's CPU-seconds (this thread's) per MiB in one repetition, the
baseline the ordinary text's, measured alternately.  Targets, on the figure: a hostile MiB
costs the masking or the codec at most a CPU-second, the detectors at most five (a turn is
a model's answer, far below a MiB; ``chimera score`` reads files offline).  Before, a MiB
of ``a.`` cost the masking about 35 minutes and 256 KiB of spaces the ending detector
about 45.  Nothing of the stack is used.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import MB
from bench.results import Outcome, Row, Target, paired
from bench.stack import Stack

NAME = "linear_time"
MIB = 1 << 20


def fill(unit: str, size: int) -> str:
    return unit * (size // len(unit))


def _masking_inputs(size: int) -> tuple[dict[str, str], str]:
    hostile = {
        "a. repeated": "key " + fill("a.", size),
        "a- repeated": "key " + fill("a-", size),
        "a://b: repeated": fill("a://b:", size),
        "key= repeated": fill("key=", size),
        "bearer repeated": fill("bearer ", size),
        "a run of spaces": "pass" + " " * size + "x",
    }
    line = (
        "2026-12-01 10:00:00 WARNING chimera.bridge: event evt-{n} rejected: key conv-{n} "
        "has no token budget left; retry with api_key rotation later [event_id=evt-{n}]\n"
    )
    ordinary: list[str] = []
    total = 0
    while total < size:
        ordinary.append(line.format(n=len(ordinary)))
        total += len(ordinary[-1])
    return hostile, "".join(ordinary)


def _codec_inputs(size: int) -> tuple[dict[str, bytes], bytes]:
    base = {"event_id": "evt-1", "context_id": "doc-1"}
    keys = size // 13
    deep = "".join('{"' + "k" * (size // 120) + '":' for _ in range(99)) + '"\\ud800"' + "}" * 99
    hostile = {
        "a long key over a long list": {**base, "k" * (size // 2): [0] * (size // 10)},
        "unknown keys": {**base, **{f"k{i}": 0 for i in range(keys)}},
        "a.a.a. as a key": {**base, "key " + fill("a.", size - 100): 1},
    }
    raw = {name: json.dumps(obj).encode() for name, obj in hostile.items()}
    raw["brackets"] = b"[" * (size // 2) + b"]" * (size // 2)
    raw["long keys to the depth limit"] = deep.encode()
    segment = {"speaker": "Ana", "text": _prose(random.Random(1), 470)}
    count = max(1, min(2_000, size // (len(json.dumps(segment)) + 2)))
    ordinary = json.dumps({**base, "segments": [segment] * count}).encode()
    return raw, ordinary


_WORDS = [
    "cars", "cities", "streets", "buses", "trains", "cyclists", "shops", "rents", "noise", "air",
    "quality", "parking", "lanes", "transit", "commuters", "councils", "budgets", "evidence",
    "trial", "pilot", "ban", "charge", "tolls", "delivery", "vans", "suburbs", "centres",
    "children", "schools", "health", "costs", "benefits", "people", "change", "habits", "slowly",
]  # fmt: skip


def _prose(rnd: random.Random, size: int) -> str:
    """Sentences of ordinary words, none repeated as a whole."""
    out: list[str] = []
    total = 0
    while total < size:
        words = rnd.choices(_WORDS, k=rnd.randint(6, 18))
        sentence = " ".join(words).capitalize() + rnd.choice([".", ".", ".", "?", "!"])
        out.append(sentence)
        total += len(sentence) + 1
    return " ".join(out)


def _detector_inputs(size: int) -> tuple[dict[str, str], str]:
    hostile = {
        "a run of spaces": "So" + " " * size + "then.",
        "one sentence of cues": fill("great point, good discussion, take care ", size),
        "thanks, endlessly": fill("thanks ", size),
        "a. repeated": fill("a.", size),
        "negations and pivots": fill("not but however thanks ", size) + "?",
    }
    return hostile, _prose(random.Random(2), size)


def _mask(text: str) -> None:
    from chimera.redaction import Redactor

    Redactor(["sk-bench-secret"]).redact(text)


def _decode(raw: bytes) -> None:
    from chimera.codec import parse_json_object, validate_event
    from chimera.errors import InputError
    from chimera.models import AnalysisTask

    with contextlib.suppress(InputError):  # refusing the hostile ones is the work measured
        validate_event(AnalysisTask, parse_json_object(raw, max_bytes=MIB))


def _detect(turn: str) -> None:
    from chimera.conversation.ending import ending_of
    from chimera.conversation.quality import score_conversation
    from chimera.models.transcript import TranscriptTurn

    texts = ["Should cities ban cars? I think they should.", turn, "Thanks, take care!"]
    turns = [
        TranscriptTurn(
            turn_index=i, speaker="ab"[i % 2], provider="anthropic", model="m", content=text
        )
        for i, text in enumerate(texts)
    ]
    ended = ending_of(turns)
    score_conversation(turns, ended_reason=ended.reason if ended else None)


def _same(value: Any, tag: int) -> Any:
    return value


def _measure(
    reps: int,
    hostile: dict[str, Any],
    ordinary: Any,
    read: Callable[[Any], object],
    fresh: Callable[[Any, int], Any] = _same,
) -> tuple[list[float], list[float], dict[str, float]]:
    """Per repetition, the worst shape's CPU-seconds per MiB and the ordinary text's (each
    shape is followed by an ordinary input, their median is the repetition's baseline); and
    each shape's median.  ``fresh`` makes each input its own (the detectors cache by text)."""
    tags = itertools.count()

    def cost(value: Any) -> float:
        value = fresh(value, next(tags))
        started = time.thread_time()
        read(value)
        return (time.thread_time() - started) / (len(value) / MIB)

    cost(ordinary)  # warm-up: imports, compiled patterns
    worst, baseline = [], []
    per_shape: dict[str, list[float]] = {name: [] for name in hostile}
    for _ in range(reps):
        ordinary_costs = []
        for name, value in hostile.items():
            per_shape[name].append(cost(value))
            ordinary_costs.append(cost(ordinary))
        worst.append(max(costs[-1] for costs in per_shape.values()))
        baseline.append(statistics.median(ordinary_costs))
    return worst, baseline, {k: round(statistics.median(v), 4) for k, v in per_shape.items()}


def _row(
    figure: str,
    baseline: str,
    measured: tuple[list[float], list[float], dict[str, float]],
    most: float,
) -> Row:
    worst, base, shapes = measured
    return paired(
        NAME,
        figure,
        "CPU s/MiB",
        worst,
        baseline=(baseline, "CPU s/MiB", base),
        target=Target("<=", most, on="figure"),
        details={"per_shape_cpu_s_per_mib": shapes},
    )


def run(stack: Stack, quick: bool) -> Outcome:
    reps = 1 if quick else 3
    big = MIB // 4 if quick else MIB
    turn = MIB // 16 if quick else MIB // 4
    masking = _measure(reps, *_masking_inputs(big), _mask)
    codec = _measure(reps, *_codec_inputs(big), _decode)
    detectors = _measure(reps, *_detector_inputs(turn), _detect, fresh=lambda t, n: f"{t} {n}")
    rows = [
        _row(f"masking {big / MB:g} MiB, worst hostile shape", "ordinary log lines", masking, 1),
        _row(f"codec {big / MB:g} MiB, worst hostile event", "valid analysis event", codec, 1),
        _row(f"detectors {turn / MB:g} MiB turn, worst shape", "ordinary prose", detectors, 5),
    ]
    return Outcome(rows, reps)
