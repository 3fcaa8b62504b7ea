"""Creating a job: check the spec and every topic, derive its id, store it, feed it.

The topics are read twice through ``TopicSource`` (once to check them and derive the
job id, once to store them), never held whole.  The same spec and topics are the same
job: creating it again writes nothing and publishes nothing new (a repeated first
batch carries the same event ids, which the inbox keeps once).

A control or a budget change that lets a job's parked conversations go on (resume, a
raise out of ``budget_exhausted``, drain or cancel of a paused job) asks for that job's
feed at once (``wake``, the task ``chimera.jobs.feed`` sent by name), so they go on
within a second instead of at beat's next round; that round stays the safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kafka import KafkaProducer

from chimera.codec import limits_from
from chimera.db.tables import JobStatus
from chimera.errors import InputError, JobConflict, NotFound, SchemaInvalid, ServiceUnavailable
from chimera.events.ids import job_id as derive_job_id
from chimera.jobs.control import PARKING, ControlState, JobControl, after_budget, target_of
from chimera.jobs.feed import FEED_TASK, FeedReport, checked, conversation_event, feed_job
from chimera.jobs.plan import UNPARKING
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.spec import canonical, job_topic, parse_spec
from chimera.redis_errors import broker_errors
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: Called once per pass: a fresh iterator over the job's topics, as ``job_topic`` makes them.
TopicSource = Callable[[], Iterator[dict[str, Any]]]
#: Asks for one job's feed now (``feeder_wake``); ``ServiceUnavailable`` if it cannot.
Wake = Callable[[str], None]


@dataclass(frozen=True)
class Created:
    job: StoredJob
    #: False: the same job existed already.
    created: bool
    feed: FeedReport


def inline_topics(items: Any) -> TopicSource:
    """The topics of a request body (``topics``: a list of objects or strings)."""
    if not isinstance(items, list) or not items:
        raise SchemaInvalid(
            "topics: expected a non-empty list",
            [{"field": "topics", "message": "expected a non-empty list of topics"}],
        )

    def source() -> Iterator[dict[str, Any]]:
        for i, item in enumerate(items):
            try:
                yield job_topic(item)
            except ValueError as exc:
                raise SchemaInvalid(
                    f"topics.{i}: {exc}", [{"field": f"topics.{i}", "message": str(exc)}]
                ) from None

    return source


def create_job(
    repo: JobRepository,
    producer: KafkaProducer,
    settings: Settings,
    spec_obj: dict[str, Any],
    topics: TopicSource,
) -> Created:
    """Check, store and start feeding a job; ``SchemaInvalid`` naming the field or the
    topic if anything is wrong (then nothing is stored or published)."""
    limits = limits_from(settings)
    spec = parse_spec(spec_obj, limits).stored()
    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for topic in topics():
            try:
                # Each topic must make an event the bridge takes (metadata size, ...).
                checked(conversation_event("job-check", spec, topic, count, count + 1), limits)
            except InputError as exc:
                where = f"topic {count + 1}"
                raise SchemaInvalid(
                    f"{where}: {exc}", [{"field": where, "message": str(exc)}]
                ) from None
            count += 1
            yield canonical(topic)

    jid = derive_job_id(spec, lines())
    if count == 0:
        raise SchemaInvalid("topics: none given", [{"field": "topics", "message": "no topics"}])
    created = repo.create(jid, spec, topics(), count)
    job = repo.get(jid)
    assert job is not None  # just stored, and jobs are never deleted
    report = feed_job(repo, producer, settings, job)
    return Created(repo.get(jid) or job, created, report)


def feeder_wake(app: Celery, settings: Settings) -> Wake:
    """Send ``chimera.jobs.feed`` for one job through ``app`` (by name: ``chimera`` never
    imports ``tasks``).  It expires after a feed interval: by then beat's round has run."""

    def wake(job_id: str) -> None:
        with broker_errors("cannot ask for the job's feed", job_id=job_id):
            app.send_task(
                FEED_TASK,
                kwargs={"job_id": job_id},
                ignore_result=True,
                expires=settings.jobs_feed_interval_s,
            )

    return wake


def control_job(
    repo: JobRepository,
    control: JobControl,
    job_id: str,
    action: str,
    wake: Wake | None = None,
) -> StoredJob:
    """Pause, resume, drain or cancel a job: its status moves in Postgres, then in Redis
    (the workers see it at their next turn); with ``wake``, a job whose parked
    conversations go on now is fed at once.  ``NotFound``; ``JobConflict`` naming the
    status the control is not allowed from."""
    row = _row(repo, job_id)
    to = target_of(action, row.status)
    if not repo.move(job_id, row.status, to):
        now = _row(repo, job_id)
        raise JobConflict(f"job moved to {now.status} meanwhile", status=now.status, job_id=job_id)
    control.write(job_id, ControlState(to.value, row.budget_usd))
    _wake(wake, job_id, row.status, to)
    return _stored_job(repo, job_id)


def update_budget(
    repo: JobRepository,
    control: JobControl,
    job_id: str,
    budget_usd: float,
    wake: Wake | None = None,
) -> StoredJob:
    """A new ``budget_usd``: a job out of budget that now has room runs again (with
    ``wake`` it is fed at once, which hands its parked conversations back)."""
    if not (isinstance(budget_usd, int | float) and not isinstance(budget_usd, bool)) or not (
        0 < budget_usd < float("inf")
    ):
        raise SchemaInvalid(
            f"budget_usd: expected a positive number, got {budget_usd!r}",
            [{"field": "budget_usd", "message": "expected a positive number"}],
        )
    row = _row(repo, job_id)
    to = after_budget(row.status, float(budget_usd), float(repo.spent(job_id)))
    if not repo.set_budget(job_id, row.status, float(budget_usd), to):
        now = _row(repo, job_id)
        raise JobConflict(f"job moved to {now.status} meanwhile", status=now.status, job_id=job_id)
    status = row.status if to is None else to.value
    control.write(job_id, ControlState(status, float(budget_usd)))
    _wake(wake, job_id, row.status, to)
    return _stored_job(repo, job_id)


def _wake(wake: Wake | None, job_id: str, before: str, after: JobStatus | None) -> None:
    """Feed the job now if it left a status that parks its conversations for one whose
    parked conversations go on.  Best effort: the move stands either way, and beat's
    next round (CHIMERA_JOBS_FEED_INTERVAL_S) hands them back if this cannot."""
    if wake is None or after is None or before not in PARKING or after not in UNPARKING:
        return
    try:
        wake(job_id)
    except ServiceUnavailable as exc:
        log.warning("job %s: not fed at once, beat's next round will: %s", job_id, exc)


def _row(repo: JobRepository, job_id: str) -> ControlState:
    row = repo.control_row(job_id)
    if row is None:
        raise NotFound("no such job", job_id=job_id)
    return row


def _stored_job(repo: JobRepository, job_id: str) -> StoredJob:
    job = repo.get(job_id)
    assert job is not None  # jobs are never deleted
    return job
