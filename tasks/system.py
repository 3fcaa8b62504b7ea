"""System tasks: the canary that proves a worker consumes and reports."""

from __future__ import annotations

import socket
import time
from typing import Any

from celery import Task, shared_task

from chimera import heartbeat
from tasks.runtime import runtime


@shared_task(name="chimera.system.canary", bind=True, acks_late=False, ignore_result=False)
def canary(self: Task, source: str = "manual", sent_at: float | None = None) -> dict[str, Any]:
    """Record this worker's heartbeat (and beat's, when beat sent it); return who ran it.

    Liveness runs this rather than a broadcast ping: a worker can answer pings
    yet have stopped consuming after a Redis reconnect.
    """
    rt = runtime()
    # The node name (name@host), so several workers on one host keep separate beats.
    host = self.request.hostname or socket.gethostname()
    now = time.time()
    heartbeat.beat(rt.redis, rt.settings, "worker", instance=host, at=now)
    if source == "beat":
        heartbeat.beat(rt.redis, rt.settings, "beat", at=now)
    return {"worker": host, "source": source, "ran_at": now, "sent_at": sent_at}
