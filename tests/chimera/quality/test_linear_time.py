"""quality.v2 costs time in proportion to the text it reads, whatever the text.

The shapes that make a pattern backtrack or a loop re-read what it has read, in one turn among
ordinary ones: scoring the conversation with the shape n characters long and 4n long must take
about 4 times the CPU, not 16 (``tests/linear.py``, as in tests/security/test_linear_time.py).
n grows from 64 KiB until scoring takes a measurable time; the larger turn is at most 4 MiB.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from chimera.quality.score import QualityV2Report, score_v2
from tests.chimera.quality.helpers import transcript
from tests.linear import assert_linear

START = 1 << 16
LARGEST = 1 << 22
#: A new number before each turn: no run reuses what an earlier one worked out.
SALT = itertools.count()


def fill(unit: str, size: int) -> str:
    return unit * (size // len(unit))


SHAPES: dict[str, Callable[[int], str]] = {
    "a run of spaces": lambda n: "word" + " " * n + "x",
    "a run of newlines": lambda n: "word" + "\n" * n + "x",
    "a. repeated": lambda n: fill("a.", n),
    "one endless sentence of thanks": lambda n: fill("thank you so much and ", n),
    "great point repeated": lambda n: fill("great point! ", n),
    "as I said repeated": lambda n: fill("as i said the lanes ", n),
    "your point about repeated": lambda n: fill("your point about lanes ", n),
    "script lines": lambda n: fill("User: hello there\nAssistant: hi again\n", n),
    "labels without a colon": lambda n: fill("Assistant ", n),
    "an unclosed marker": lambda n: fill("[system ", n),
    "turn counters": lambda n: fill("turn 1 of ", n),
    "of the repeated": lambda n: fill("the lane of the city of ", n),
    "apostrophes": lambda n: fill("a'", n),
    "one long word": lambda n: "x" * n,
    "dotted digits": lambda n: fill("1.", n),
    "commas at the end": lambda n: fill("lane, ", n),
    "foreign script": lambda n: fill("密码管理器", n),
    "accents": lambda n: fill("élève à l'école ", n),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hostile_text_is_scored_in_linear_time(shape: str) -> None:
    def prepare(n: int) -> Callable[[], QualityV2Report]:
        text = f"{next(SALT)} {SHAPES[shape](n)}"
        turns = transcript(
            "Why do cities build cycle lanes when most people drive?",
            text,
            "Because protected lanes change who cycles.",
            text[: n // 4],
        )
        topic = "Cycle lanes " + text[:1000]
        return lambda: score_v2(turns, topic=topic, personas={"Ben": text[:500]})

    report = assert_linear(shape, prepare, start=START, largest=LARGEST)
    assert 0.0 <= report.score <= 1.0
