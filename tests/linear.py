"""Linear time, shown by how the cost grows with the input rather than by a clock bound.

A reader is run on an input of size n and on one of size 4n, each on this thread's CPU clock
(what other processes do on a loaded machine is not counted) and the fastest of ``REPEAT``
runs: a linear reader needs about 4 times as long for the larger input, a quadratic one 16
times, so the ratio must stay within ``MAX_RATIO``.  n grows from ``start`` until the smaller
run takes ``MIN_CPU_S`` (so fixed costs and the clock's grain do not hide the growth), up to
a quarter of ``largest``; a reader still faster than that is run several times per measurement.
A slow machine makes both runs slower alike, so the ratio, not the time, is what is asserted.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: The larger input is this many times the smaller.
GROWTH = 4
#: Linear code comes near GROWTH, quadratic code near GROWTH squared.
MAX_RATIO = 8.0
#: CPU-seconds the smaller measurement should take at least.
MIN_CPU_S = 0.02
#: Runs per size; the fastest counts (a run slowed by anything else only ever takes longer).
REPEAT = 3


@dataclass(frozen=True)
class Scaling:
    """What was measured: CPU-seconds for ``loops`` runs at ``size`` and at GROWTH times ``size``."""

    size: int
    loops: int
    small_s: float
    large_s: float

    @property
    def ratio(self) -> float:
        return self.large_s / max(self.small_s, 1e-9)

    def __str__(self) -> str:
        return (
            f"n={self.size} loops={self.loops} t(n)={self.small_s * 1000:.1f} ms "
            f"t({GROWTH}n)={self.large_s * 1000:.1f} ms ratio={self.ratio:.2f}"
        )


def _cpu_s(prepare: Callable[[int], Callable[[], T]], size: int, loops: int) -> tuple[float, T]:
    """The fewest CPU-seconds of ``loops`` runs over REPEAT tries; and the last result."""
    best = math.inf
    result: T
    for _ in range(REPEAT):
        runs = [prepare(size) for _ in range(loops)]  # built off the clock
        gc.collect()
        started = time.thread_time()
        for run in runs:
            result = run()
        best = min(best, time.thread_time() - started)
    return best, result


def scaling(
    prepare: Callable[[int], Callable[[], T]], *, start: int, largest: int
) -> tuple[Scaling, T]:
    """Measure ``prepare(n)()`` at n and at GROWTH times n; the larger input's result too.

    ``prepare`` is called afresh for every run, off the clock, so each run can be handed an
    input of its own (a cache keyed on the text must not make a repeat free).  The larger
    input is at most ``largest``.
    """
    size = min(start, largest // GROWTH)
    while True:
        once, _ = _cpu_s(prepare, size, 1)
        if once >= MIN_CPU_S or size * GROWTH > largest // GROWTH:
            break
        size *= GROWTH
    loops = 1 if once >= MIN_CPU_S else min(50, math.ceil(MIN_CPU_S / max(once, 1e-4)))
    small_s = once if loops == 1 else _cpu_s(prepare, size, loops)[0]
    large_s, result = _cpu_s(prepare, size * GROWTH, loops)
    return Scaling(size, loops, small_s, large_s), result


def assert_linear(
    what: str, prepare: Callable[[int], Callable[[], T]], *, start: int, largest: int
) -> T:
    """Fail unless ``prepare(n)()`` scales linearly (see ``scaling``); the larger result."""
    measured, result = scaling(prepare, start=start, largest=largest)
    print(f"linear {what}: {measured}")  # shown with -s or -rP: the ratios, run by run
    assert measured.ratio <= MAX_RATIO, f"{what}: not linear: {measured}"
    return result
