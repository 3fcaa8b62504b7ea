"""Beat's periodic work: draining the topic queue, feeding jobs and reconciling stuck events."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from chimera.conversation.topic_queue import TopicQueue
from chimera.conversation.turns import admit_waiting
from chimera.errors import ServiceUnavailable
from chimera.events.reconcile import ReconcileReport, Redrive, Workflow
from chimera.events.reconcile import reconcile as reconcile_events
from chimera.jobs.feed import FEED_TASK, feed_all, feed_one
from chimera.jobs.queue_job import TOPIC_QUEUE_JOB, drains, open_queue_job
from chimera.rounds import take_round
from tasks.handoff import send_handoff
from tasks.runtime import Runtime, runtime

log = logging.getLogger(__name__)

#: What a round returns when another beat's round of its kind ran just before.
TAKEN = {"skipped": "round taken"}


def _round(task: Task, rt: Runtime, name: str, interval_s: float) -> bool:
    """Take this round of ``name`` (``chimera/rounds.py``): False when another beat's
    round ran just before (two beats at once), so this one does nothing.  A round run
    in-process (``apply()``) rather than delivered by the broker is not gated."""
    if task.request.is_eager or take_round(rt.redis, rt.settings, name, interval_s):
        return True
    log.debug("%s: round taken by another beat, skipped", name)
    return False


@shared_task(name="chimera.topics.drain", bind=True, ignore_result=True, acks_late=False)
def drain_topics(self: Task) -> dict[str, Any]:
    """Start conversations for queued topics, within the configured capacity; items that
    can never become one go to the queue's dead letters (`chimera topics dead`).  Each
    conversation is one of the queue's job, made first if missing; while that job is
    paused (or out of budget) the queue drains nothing."""
    rt = runtime()
    queue = TopicQueue(rt.redis, rt.settings)
    try:
        if not _round(self, rt, "topics.drain", rt.settings.topics_drain_interval_s):
            return dict(TAKEN)
        status = open_queue_job(rt.jobs, rt.settings)
        if not drains(status):
            log.debug("topic queue: not drained, its job %s is %s", TOPIC_QUEUE_JOB, status)
            return {"skipped": f"job {TOPIC_QUEUE_JOB} is {status}"}
        report = queue.drain(
            rt.inbox,
            lambda event_id: send_handoff(self.app, "conversation", event_id),
            running=rt.conversations.running(),
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


@shared_task(name=FEED_TASK, bind=True, ignore_result=True, acks_late=False)
def feed_jobs(self: Task, job_id: str | None = None) -> dict[str, Any]:
    """Publish the running jobs' next conversations and move their statuses
    (`chimera/jobs/plan.py` decides how many); with ``job_id``, that job's alone (sent
    by a control that runs it again, so its parked conversations go on at once)."""
    rt = runtime()
    try:
        if job_id is None:
            if not _round(self, rt, "jobs.feed", rt.settings.jobs_feed_interval_s):
                return dict(TAKEN)
            reports = feed_all(rt.jobs, rt.producer, rt.settings, rt.job_control)
        else:
            one = feed_one(rt.jobs, rt.producer, rt.settings, job_id, rt.job_control)
            reports = [] if one is None else [one]
    except ServiceUnavailable as exc:
        # The cursor moves only after a batch is acknowledged: the next round
        # (CHIMERA_JOBS_FEED_INTERVAL_S) re-publishes the same event ids.
        log.warning("jobs: feed cut short, the next one goes on: %s", exc)
        return {"skipped": str(exc)}
    for r in reports:
        for event_id in r.resumed:  # parked conversations of a job running again
            send_handoff(self.app, "conversation", event_id)
        if r.resumed:
            log.info("job %s: %d parked conversations resumed", r.job_id, len(r.resumed))
        if r.published:
            log.info("job %s: %d conversations published (%s)", r.job_id, r.published, r.status)
    return {"jobs": len(reports), "published": sum(r.published for r in reports)}


@shared_task(name="chimera.reconcile", bind=True, ignore_result=True, acks_late=False)
def reconcile(self: Task) -> dict[str, Any]:
    """Admit waiting conversations (a lost release must not strand the line), then
    re-drive conversation and analysis events stuck between received and done."""
    rt = runtime()
    try:
        if not _round(self, rt, "reconcile", rt.settings.reconcile_interval_s):
            return dict(TAKEN)
    except ServiceUnavailable as exc:
        log.warning("reconcile: round skipped, the next one goes on: %s", exc)
        return {"skipped": str(exc)}
    try:
        admitted = admit_waiting(rt.conversations)
    except ServiceUnavailable as exc:
        log.warning("admission: round skipped, the next one goes on: %s", exc)
        admitted = ()
    for event_id in admitted:
        send_handoff(self.app, "conversation", event_id)
    if admitted:
        log.info("admission: %d waiting conversations admitted", len(admitted))

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
        report = _reconcile_all(rt, redrive, redrive_analysis)
    except ServiceUnavailable as exc:
        # The next round (RECONCILE_INTERVAL_S) tries again; nothing was half-done:
        # each event's re-drive is one inbox update and one task sent.
        log.warning("reconcile: round cut short, next round retries: %s", exc)
        return {"skipped": str(exc)}
    return report.as_dict()


def _reconcile_all(rt: Runtime, redrive: Redrive, redrive_analysis: Redrive) -> ReconcileReport:
    conversations, analysis = rt.conversations, rt.analysis
    return reconcile_events(
        rt.settings,
        rt.inbox,
        [
            Workflow("conversation", conversations.judge_stuck, redrive, conversations.abandon),
            Workflow("analysis", analysis.judge_stuck, redrive_analysis, analysis.abandon),
        ],
    )
