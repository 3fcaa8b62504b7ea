"""The Kafka bridge: ingest rate and memory.

* **ingest**: conversation requests are published to ``conversation.new`` while the bridge is
  stopped (SIGSTOP, well inside its session timeout), then it is let go and the inbox is
  polled: events/s between 10 % and 90 % of the batch written ÷ the rate at which a bare
  Celery client publishes tasks (results ignored, as hand-offs are sent), measured between
  the batches.  Nothing consumes the hand-offs (the queue's high-water mark is lifted), so
  only the bridge's own path is timed.  Target >= 0.5.
* **memory**: the bridge's RSS growth over the 10,000 events of the batches, from its RSS
  after a warm-up batch.  Target <= 10 MB.
"""

from __future__ import annotations

import os
import signal
import time

from bench import baselines
from bench.common import MB, stop, wait_until
from bench.results import Outcome, Target, paired
from bench.stack import Stack

NAME = "bridge"


def _inbox_count(stack: Stack) -> int:
    from sqlalchemy import text

    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def _ingest_rate(stack: Stack, pid: int, events: int) -> float:
    """Publish ``events`` with the bridge stopped, let it go, time 10 % to 90 % of them."""
    base = _inbox_count(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        stack.produce(events)
    finally:
        os.kill(pid, signal.SIGCONT)
    low, high = base + events // 10, base + events - events // 10
    t_low = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count, now = _inbox_count(stack), time.monotonic()
        if t_low is None and count >= low:
            t_low = now
        if count >= high and t_low is not None:
            while _inbox_count(stack) < base + events and time.monotonic() < deadline:
                time.sleep(0.05)
            return (high - low) / max(now - t_low, 1e-3)
        time.sleep(0.01)
    raise RuntimeError(f"the bridge wrote {_inbox_count(stack) - base} of {events} events")


def run(stack: Stack, quick: bool) -> Outcome:
    import psutil

    reps, events, warmup = (4, 500, 200) if quick else (4, 2_500, 300)
    bridge = stack.bridge(
        CHIMERA_BRIDGE_QUEUE_HIGH_WATER="10000000", CHIMERA_BRIDGE_QUEUE_LOW_WATER="5000000"
    )
    publish_queue = f"{stack.settings.celery_queue}-publish"
    try:
        before = _inbox_count(stack)  # earlier scenarios' conversations are in the inbox too
        stack.produce(warmup)
        wait_until(
            "the bridge's warm-up", lambda: _inbox_count(stack) >= before + warmup, bridge, 90
        )
        rss_start = psutil.Process(bridge.pid).memory_info().rss / MB
        ingest, publish = [], []
        for _ in range(reps):
            publish.append(baselines.publish_rate(stack.app, publish_queue, events))
            ingest.append(_ingest_rate(stack, bridge.pid, events))
        rss_end = psutil.Process(bridge.pid).memory_info().rss / MB
    finally:
        stop(bridge)
    total = reps * events
    return Outcome(
        [
            paired(
                NAME,
                "Kafka to inbox written, events/s",
                "events/s",
                ingest,
                baseline=("bare Celery publish", "tasks/s", publish),
                target=Target(">=", 0.5),
                details={"events_per_repetition": events},
            ),
            paired(
                NAME,
                f"bridge RSS growth over {total} events",
                "MB",
                [rss_end - rss_start],
                baseline=("bridge RSS after warm-up", "MB", [rss_start]),
                target=Target("<=", 10.0, on="figure"),
                details={"warmup_events": warmup},
            ),
        ],
        reps,
    )
