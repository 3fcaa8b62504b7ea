"""Scale-out and worker memory, in the CPU-bound setting (zero simulated latency,
conversations sent in batches), on two workers of the default thread count.

* **scale-out**: turns/s with two worker processes ÷ with one.  Both workers run throughout;
  for the one-process batches the second stops consuming the queue (Celery's
  ``cancel_consumer``), so the two settings alternate without restarts.  Target >= 1.6.
* **worker memory**: the first worker's RSS growth from after the warm-up to the end, over
  the turns it ran (2,000 or more in the full run; counted by the worker itself).
  Target <= 10 MB.
"""

from __future__ import annotations

from bench.results import Outcome, Target, paired
from bench.stack import TURNS, Stack

NAME = "scale_out"
TURN_TASK = "chimera.conversation.turn"


def run(stack: Stack, quick: bool) -> Outcome:
    reps, batch = (2, 20) if quick else (3, 80)
    stack.sim.latency(0)
    queue = stack.settings.celery_queue
    concurrency = stack.settings.celery_concurrency
    first, second = stack.workers([concurrency, concurrency])
    try:
        stack.run_conversations(10, 60, poll_s=0.1)  # warm-up of both
        rss_start, turns_start = first.rss_mb(), first.tasks_done(TURN_TASK)
        one, two, rss = [], [], []
        for _ in range(reps):
            second.pause(queue)
            one.append(batch * TURNS / stack.run_conversations(batch, 300, poll_s=0.1))
            second.resume(queue)
            two.append(batch * TURNS / stack.run_conversations(batch, 300, poll_s=0.1))
            rss.append(round(first.rss_mb(), 1))
        rss_end, turns = first.rss_mb(), first.tasks_done(TURN_TASK) - turns_start
    finally:
        first.close()
        second.close()
    details = {"conversations_per_batch": batch, "threads_per_worker": concurrency}
    return Outcome(
        [
            paired(
                NAME,
                "turns/s, 2 worker processes",
                "turns/s",
                two,
                baseline=("1 worker process", "turns/s", one),
                target=Target(">=", 1.6),
                details=details,
            ),
            paired(
                NAME,
                f"worker RSS growth over {turns} turns",
                "MB",
                [rss_end - rss_start],
                baseline=("worker RSS after warm-up", "MB", [rss_start]),
                target=Target("<=", 10.0, on="figure"),
                details={"rss_mb_after_each_repetition": rss},
            ),
        ],
        reps,
    )
