"""Feeding jobs: publishing their next `conversation.new` events, moving their status.

Every event a job publishes has an id derived from the job and its position
(``job_event_id``), so a feed repeated after a crash, or a job created twice,
publishes the same events and the inbox keeps one of each.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

from chimera.codec import encode, limits_from, validate_event
from chimera.db.tables import JobStatus
from chimera.errors import InputError
from chimera.events.ids import job_event_id
from chimera.jobs.control import JobControl
from chimera.jobs.plan import UNPARKING, next_status, to_feed
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.kafka.clients import publish
from chimera.models import ConversationRequest
from chimera.models.conversation import ConversationLimits
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: How long a feed waits for the broker to acknowledge its batch.
ACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class FeedReport:
    job_id: str
    published: int
    status: str
    #: Event ids of parked conversations that go on now: the caller hands them off.
    resumed: tuple[str, ...] = ()


def conversation_event(
    job_id: str, spec: dict[str, Any], topic: dict[str, Any], position: int, topic_count: int
) -> dict[str, Any]:
    """The `conversation.new` event of a job's ``position``-th conversation.

    Each pass over the topics (a cycle, with a target) rotates the participants, so the
    same topic is met by another pairing and opening speaker.
    """
    cycle = position // topic_count
    participants = list(spec["participants"])
    k = cycle % len(participants)
    metadata: dict[str, Any] = {"job_id": job_id, "job_position": position, "job_cycle": cycle}
    if topic.get("metadata"):
        metadata["topic_metadata"] = topic["metadata"]
    return {
        "event_id": job_event_id(job_id, position),
        "topic": {k2: v for k2, v in topic.items() if k2 != "metadata"},
        "min_turns": spec["min_turns"],
        "max_turns": spec["max_turns"],
        "participants": participants[k:] + participants[:k],
        "metadata": metadata,
        "job_id": job_id,
    }


def checked(event: dict[str, Any], limits: ConversationLimits) -> ConversationRequest:
    """``event`` as the bridge will take it (``SchemaInvalid`` otherwise)."""
    return validate_event(ConversationRequest, event, context={"limits": limits})


def publish_events(
    producer: KafkaProducer, settings: Settings, events: Iterable[ConversationRequest]
) -> int:
    """Publish ``events`` to `conversation.new` and wait for every acknowledgement."""
    futures = [
        publish(producer, settings.topic_conversation_new, e.event_id, encode(e)) for e in events
    ]
    for fut in futures:
        fut.get(timeout=ACK_TIMEOUT_S)
    return len(futures)


def feed_job(
    repo: JobRepository,
    producer: KafkaProducer,
    settings: Settings,
    job: StoredJob,
    control: JobControl | None = None,
) -> FeedReport:
    """Publish what ``job`` needs now (at most ``CHIMERA_JOBS_FEED_BATCH``), then move its
    status if its figures say so; with ``control``, keep its Redis control state in step
    and take back its parked conversations when it runs again (``resumed``)."""
    resumed: tuple[str, ...] = ()
    if control is not None and job.status in UNPARKING:
        resumed = tuple(control.take_parked(job.id))
    view = job.view
    n = to_feed(view, job.figures, settings.jobs_feed_batch)
    published = 0
    if n:
        positions = range(job.fed, job.fed + n)
        topics = repo.topics_at(job.id, (p % job.topic_count for p in positions))
        limits = limits_from(settings)
        try:
            events = [
                checked(
                    conversation_event(
                        job.id, job.spec, topics[p % job.topic_count], p, job.topic_count
                    ),
                    limits,
                )
                for p in positions
            ]
        except InputError as exc:
            # The configuration changed under the job (a model no longer allowed, ...).
            log.error("job %s cannot go on: %s", job.id, exc)
            if repo.move(job.id, job.status, JobStatus.FAILED) and control is not None:
                control.forget(job.id)
            return FeedReport(job.id, 0, JobStatus.FAILED.value, resumed)
        published = publish_events(producer, settings, events)
        repo.advance(job.id, job.fed + n)
        view = type(view)(view.status, view.topic_count, job.fed + n, view.target)
    status = job.status
    # At most pending -> running -> completed in one round.
    while (moved := next_status(view, job.figures)) is not None:
        if not repo.move(job.id, status, moved):
            break
        if control is not None:
            control.forget(job.id)  # rebuilt from Postgres at the next read
        log.info("job %s: %s -> %s", job.id, status, moved.value)
        status = moved.value
        view = type(view)(status, view.topic_count, view.fed, view.target)
    return FeedReport(job.id, published, status, resumed)


def feed_all(
    repo: JobRepository,
    producer: KafkaProducer,
    settings: Settings,
    control: JobControl | None = None,
) -> list[FeedReport]:
    """One feeding round over the jobs the feeder watches, highest priority first."""
    return [
        feed_job(repo, producer, settings, job, control) for job in repo.list_jobs(active_only=True)
    ]


#: The Celery task that feeds jobs: beat sends it every CHIMERA_JOBS_FEED_INTERVAL_S, and a
#: control that runs a job again sends it for that job (``job_id``) at once.
FEED_TASK = "chimera.jobs.feed"


def feed_one(
    repo: JobRepository,
    producer: KafkaProducer,
    settings: Settings,
    job_id: str,
    control: JobControl | None = None,
) -> FeedReport | None:
    """Feed one job now, as a round would (a control ran it again); None when the job is
    gone or is not one the feeder looks at."""
    job = repo.get(job_id)
    if job is None or job.status not in UNPARKING:
        return None
    return feed_job(repo, producer, settings, job, control)
