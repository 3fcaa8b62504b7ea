"""Handing an accepted event to Celery (used by the bridge and the reconciler).

One task per event, its id derived from the event id, sent with results
ignored: a sender that subscribed to every task's result channel would grow
without bound (docs/reliability.md, "Publisher memory").  The hand-off task builds
the canvas itself, with deterministic ids, so a repeated hand-off is harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from chimera import tracing
from chimera.events.ids import handoff_task_id

#: Event kind -> the task that starts its work.
HANDOFF_TASKS = {
    "conversation": "chimera.conversation.start",
    "analysis": "chimera.analysis.start",
}


def send_handoff(app: Celery, kind: str, event_id: str, *, producer: Any = None) -> str:
    """Enqueue the event's hand-off task (with ``producer``, if given: a batch of
    hand-offs can share one); returns the task id."""
    task_id = handoff_task_id(kind, event_id)
    app.send_task(
        HANDOFF_TASKS[kind],
        args=[event_id],
        task_id=task_id,
        ignore_result=True,
        producer=producer,
        headers=tracing.inject({}),  # the bridge's record span, if tracing is on
    )
    return task_id
