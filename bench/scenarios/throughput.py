"""LLM-bound throughput: 200 conversations x 6 turns sent at once at a simulated latency of
2 s per call, on one worker whose thread count is the in-flight capacity (25, 50, 100).
Achieved turns/s ÷ the physical limit, capacity / 2 s.  Target >= 0.9 at each capacity.

One repetition per capacity: at capacity 25 the run alone takes over 90 s, and the 10-minute
budget of ``make bench`` allows no more.  The three workers start together; each consumes
only during its own run (Celery's ``add_consumer`` / ``cancel_consumer``).  ``--quick`` sends
as many conversations as the capacity (every one in flight from the start, six waves of calls).
"""

from __future__ import annotations

from bench.results import Outcome, Row, Target, paired
from bench.stack import TURNS, Stack, Worker

NAME = "throughput"
CAPACITIES = (25, 50, 100)
LATENCY_S = 2.0


def one(stack: Stack, worker: Worker, capacity: int, conversations: int) -> Row:
    """One capacity: only ``worker`` (``capacity`` threads) consumes while it runs."""
    queue = stack.settings.celery_queue
    ideal = capacity / LATENCY_S
    worker.resume(queue)
    try:
        budget = 120 + 3 * conversations * TURNS / ideal
        elapsed = stack.run_conversations(conversations, budget, poll_s=0.1)
    finally:
        worker.pause(queue)
    achieved = conversations * TURNS / elapsed
    details = {"conversations": conversations, "latency_s": LATENCY_S, "elapsed_s": elapsed}
    return paired(
        NAME,
        f"turns/s at capacity {capacity}",
        "turns/s",
        [achieved],
        baseline=(f"capacity / {LATENCY_S:g} s", "turns/s", [ideal]),
        target=Target(">=", 0.9),
        details=details,
    )


def run(stack: Stack, quick: bool) -> Outcome:
    stack.sim.latency(LATENCY_S)
    queue = stack.settings.celery_queue
    # Started together and paused until their turn: one start-up instead of three.
    workers = stack.workers(list(CAPACITIES))
    for worker in workers:
        worker.pause(queue)
    try:
        rows = [
            one(stack, worker, c, c if quick else 200)
            for worker, c in zip(workers, CAPACITIES, strict=True)
        ]
    finally:
        for worker in workers:
            worker.close()
    return Outcome(rows, 1)
