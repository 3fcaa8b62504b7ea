"""The topic queue's job: every conversation the Redis topic queue starts belongs to one
fixed job, ``TOPIC_QUEUE_JOB`` (``job-topic-queue``), so it is listed, counted, controlled
and exported like any other (``chimera jobs status job-topic-queue``, ``GET /jobs/<id>``).

Its events carry the job in ``job_id`` and in their metadata, as a job's own do, and
``job_of_event`` reads it from their ``topics:`` event ids.  It has no stored topics, no
target and no budget; its spec is the settings' defaults (participants, turn range).  The
feeder leaves it alone (``plan``: a job without topics is never fed, started or completed
by it), except to hand back its parked conversations when it runs again.

It is created by the drain, not by a migration: each drain upserts it first (one
statement, written only when missing or when the defaults changed), because its spec comes
from the settings a migration never reads, and a drain must never start a conversation
whose job row is missing (the conversation would be stored without its job).

Controls: pause and resume (a paused job's queue drains nothing, its running conversations
park at their next turn and go on at resume); a budget may be set and is kept as any
job's.  Drain and cancel are refused with a ``JobConflict`` (``control.check_move``): the
job lasts as long as the queue.
"""

from __future__ import annotations

from typing import Any

from chimera.codec import limits_from
from chimera.db.tables import JobStatus
from chimera.events.ids import TOPIC_QUEUE_JOB
from chimera.jobs.repository import JobRepository
from chimera.jobs.spec import parse_spec
from chimera.settings import Settings

__all__ = ["QUEUE_JOB_NAME", "TOPIC_QUEUE_JOB", "drains", "open_queue_job", "queue_job_spec"]

#: The job's name in listings.
QUEUE_JOB_NAME = "topic queue"


def queue_job_spec(settings: Settings) -> dict[str, Any]:
    """The job's spec: the settings' default participants and turn range, nothing else."""
    return parse_spec({"name": QUEUE_JOB_NAME}, limits_from(settings)).stored()


def open_queue_job(repo: JobRepository, settings: Settings) -> str:
    """The job, created (running) if missing; its status."""
    return repo.ensure_open(TOPIC_QUEUE_JOB, queue_job_spec(settings))


def drains(status: str) -> bool:
    """Whether the queue starts conversations while its job is in ``status``."""
    return status == JobStatus.RUNNING
