"""Backpressure: stop taking events while the Celery queue is long.

Intake pauses when more than ``high_water`` hand-offs wait in the queue and
resumes once it is down to ``low_water``; the gap keeps the bridge from
flapping at the mark.
"""

from __future__ import annotations

import logging

from celery import Celery

from chimera.redis_errors import broker_errors

log = logging.getLogger(__name__)


def queue_depth(app: Celery, queue: str | None = None) -> int:
    """Messages waiting in ``queue`` (default: the app's default queue).

    kombu's Redis transport keeps one list per priority step (``name``,
    ``name\\x06\\x163``, ``...6``, ``...9``) under ``global_keyprefix``; the
    channel's ``queue_declare`` sums them through the transport's own prefixing
    client.  (A plain LLEN of ``name`` misses every message sent with a priority.)
    An unreachable broker fails at once (no reconnect loop: the next check retries).
    """
    name = queue or app.conf.task_default_queue
    with (
        broker_errors(f"cannot read the depth of Celery queue {name!r}"),
        app.pool.acquire(block=True, timeout=10) as conn,
    ):
        conn.ensure_connection(max_retries=0)
        return int(conn.default_channel.queue_declare(queue=name).message_count)


class Backpressure:
    """Hysteresis between a high- and a low-water mark of the queue depth."""

    def __init__(self, high_water: int, low_water: int) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self.engaged = False
        self.depth: int | None = None

    def update(self, depth: int) -> bool:
        """Record the current depth; return whether intake should pause."""
        self.depth = depth
        if not self.engaged and depth > self.high_water:
            self.engaged = True
            log.warning(
                "Celery queue holds %d messages (high-water mark %d): pausing intake",
                depth,
                self.high_water,
            )
        elif self.engaged and depth <= self.low_water:
            self.engaged = False
            log.info(
                "Celery queue down to %d messages (low-water mark %d): resuming intake",
                depth,
                self.low_water,
            )
        return self.engaged
