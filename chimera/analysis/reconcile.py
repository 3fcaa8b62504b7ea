"""The analysis workflow's judgement of a stuck event (``chimera.events.reconcile`` runs
the loop and acts).

A recorded run settles its event; a run with a part still calling or waiting to
retry is slow, not stuck; otherwise its chord was lost and is sent again
(``resume``: kept results keep it from paying twice).
"""

from __future__ import annotations

from chimera.analysis.repository import RunRepository
from chimera.analysis.store import PartStore
from chimera.events.ids import run_id
from chimera.events.inbox import EventStatus, InboxEvent
from chimera.events.reconcile import Decision


class StuckAnalyses:
    """``Judge`` of analysis events, from the run's row and its parts in Redis."""

    def __init__(self, *, runs: RunRepository, parts: PartStore) -> None:
        self._runs = runs
        self._parts = parts

    def __call__(self, event: InboxEvent) -> Decision:
        rid = run_id(event.event_id)
        status = self._runs.status(rid)
        if status is not None:
            settled = EventStatus.DEAD_LETTERED if status == "failed" else EventStatus.DONE
            return Decision.settle(settled, "recorded, but the inbox missed it")
        if self._parts.active(rid):
            return Decision.progressing("a part calls or waits to retry")
        return Decision.redrive(resume=True, why="chord re-sent")
