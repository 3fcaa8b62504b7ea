"""Re-drives analysis events stuck between received and done (e.g. Redis lost the chord).

A recorded run settles its event; a run with a part still calling or waiting to
retry is slow, not stuck, and is left alone; otherwise the hand-off is sent again
with ``resume`` (the chord is re-sent; kept results keep it from paying twice),
until the event has been re-driven too often and is dead-lettered.
"""

from __future__ import annotations

import logging

from chimera.analysis.repository import RunRepository
from chimera.analysis.store import PartStore
from chimera.conversation.reconcile import GiveUp, ReconcileReport, Redrive
from chimera.ids import run_id
from chimera.inbox import Inbox
from chimera.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["GiveUp", "Redrive", "reconcile_analyses"]


def reconcile_analyses(
    settings: Settings,
    *,
    inbox: Inbox,
    runs: RunRepository,
    parts: PartStore,
    redrive: Redrive,
    give_up: GiveUp,
    limit: int = 100,
) -> ReconcileReport:
    report = ReconcileReport()
    for event in inbox.stuck(kind="analysis", older_than_s=settings.reconcile_after_s, limit=limit):
        report.checked += 1
        rid = run_id(event.event_id)
        status = runs.status(rid)
        if status is not None:  # recorded, but the inbox missed it
            inbox.mark(event.event_id, "dead_lettered" if status == "failed" else "done")
            report.repaired.append(event.event_id)
            continue
        if parts.active(rid):
            report.progressing += 1  # a part calls or waits to retry
            continue
        if event.attempts >= settings.reconcile_max_attempts:
            give_up(event.event_id, f"not done after {event.attempts} re-drives")
            report.given_up.append(event.event_id)
            continue
        inbox.mark(event.event_id, event.status, count_attempt=True)  # type: ignore[arg-type]
        redrive(event.event_id, True)
        report.redriven.append(event.event_id)
        log.warning("re-drove analysis event %s (attempt %d)", event.event_id, event.attempts + 1)
    return report
