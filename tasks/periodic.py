"""Beat's periodic work: draining the topic queue and reconciling stuck events."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from chimera.analysis.reconcile import reconcile_analyses
from chimera.conversation.reconcile import ReconcileReport, Redrive
from chimera.conversation.reconcile import reconcile as reconcile_events
from chimera.conversation.topic_queue import TopicQueue
from chimera.errors import ServiceUnavailable
from tasks.handoff import send_handoff
from tasks.runtime import Runtime, runtime

log = logging.getLogger(__name__)


@shared_task(name="chimera.topics.drain", bind=True, ignore_result=True, acks_late=False)
def drain_topics(self: Task) -> dict[str, Any]:
    """Start conversations for queued topics, within the configured capacity; items that
    can never become one go to the queue's dead letters (`chimera topics dead`)."""
    rt = runtime()
    queue = TopicQueue(rt.redis, rt.settings)
    try:
        report = queue.drain(
            rt.inbox,
            lambda event_id: send_handoff(self.app, "conversation", event_id),
            running=rt.conversations.repo.running_count(),
        )
    except ServiceUnavailable as exc:
        # Items already moved stay in the processing list: the next drain
        # (CHIMERA_TOPICS_DRAIN_INTERVAL_S) finishes them first.
        log.warning("topic queue: drain cut short, the next one goes on: %s", exc)
        return {"skipped": str(exc)}
    if report.started or report.dead_lettered:
        log.info(
            "topic queue: %d started, %d duplicates, %d dead-lettered",
            report.started,
            report.duplicates,
            len(report.dead_lettered),
        )
    return {
        "started": report.started,
        "duplicates": report.duplicates,
        "dead_lettered": len(report.dead_lettered),
    }


@shared_task(name="chimera.reconcile", bind=True, ignore_result=True, acks_late=False)
def reconcile(self: Task) -> dict[str, Any]:
    """Re-drive conversation and analysis events stuck between received and done."""
    rt = runtime()

    def redrive(event_id: str, resume: bool) -> None:
        self.app.send_task(
            "chimera.conversation.start",
            args=[event_id],
            kwargs={"resume": resume},
            ignore_result=True,
        )

    def redrive_analysis(event_id: str, resume: bool) -> None:
        self.app.send_task(
            "chimera.analysis.start",
            args=[event_id],
            kwargs={"resume": resume},
            ignore_result=True,
        )

    try:
        reports = _reconcile_all(rt, redrive, redrive_analysis)
    except ServiceUnavailable as exc:
        # The next round (RECONCILE_INTERVAL_S) tries again; nothing was half-done:
        # each event's re-drive is one inbox update and one task sent.
        log.warning("reconcile: round cut short, next round retries: %s", exc)
        return {"skipped": str(exc)}
    return {
        "checked": sum(r.checked for r in reports),
        "redriven": sum(len(r.redriven) for r in reports),
        "repaired": sum(len(r.repaired) for r in reports),
        "progressing": sum(r.progressing for r in reports),
        "given_up": sum(len(r.given_up) for r in reports),
    }


def _reconcile_all(
    rt: Runtime, redrive: Redrive, redrive_analysis: Redrive
) -> list[ReconcileReport]:
    engine = rt.conversations
    return [
        reconcile_events(
            rt.settings,
            inbox=rt.inbox,
            store=engine.store,
            repo=engine.repo,
            redrive=redrive,
            give_up=engine.abandon,
        ),
        reconcile_analyses(
            rt.settings,
            inbox=rt.inbox,
            runs=rt.analysis.runs,
            parts=rt.analysis.parts,
            redrive=redrive_analysis,
            give_up=rt.analysis.abandon,
        ),
    ]
