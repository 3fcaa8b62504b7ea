"""What a job does next, decided from its row and its figures (pure; ``feed`` acts)."""

from __future__ import annotations

from dataclasses import dataclass

from chimera.db.tables import JobStatus
from chimera.jobs.figures import Figures

#: Statuses in which a job is fed and may move on.
ACTIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING})
#: Statuses the feeder looks at (to feed, to hand parked conversations back, to complete).
WATCHED = ACTIVE | {JobStatus.DRAINING}
#: Statuses a job never leaves.
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED})
#: Statuses whose parked conversations go on (handed off again by the feeder).
UNPARKING = WATCHED | {JobStatus.CANCELLED}


@dataclass(frozen=True)
class JobView:
    """What the decisions need of a job's row."""

    status: str
    topic_count: int
    fed: int
    target: int | None


def in_flight(job: JobView, fig: Figures) -> int:
    """Published and not yet finished (queued, or running)."""
    return max(0, job.fed - fig.finished)


def to_feed(job: JobView, fig: Figures, batch: int) -> int:
    """How many more `conversation.new` events to publish now, at most ``batch``.

    Without a target, one per topic until every topic has had one.  With one, enough
    that accepted + in flight reaches the target, cycling the topics.  A job without
    topics (the topic queue's) is never fed.
    """
    if job.status not in ACTIVE or job.topic_count == 0:
        return 0
    if job.target is None:
        return max(0, min(batch, job.topic_count - job.fed))
    return max(0, min(batch, job.target - fig.accepted - in_flight(job, fig)))


def next_status(job: JobView, fig: Figures) -> JobStatus | None:
    """The status the job moves to now, or None to stay.

    pending -> running at the first conversation started (or the first event finished
    without one: dead-lettered at its start); a job completes when all it published
    have finished (dead-lettered events included) and its target is reached (or,
    without one, every topic has had its conversation).  A job without topics (the
    topic queue's, fed by the queue: ``chimera.jobs.queue_job``) never moves here.
    """
    if job.topic_count == 0:
        return None
    if job.status == JobStatus.DRAINING:
        # Nothing new starts: done when those running are.
        return JobStatus.COMPLETED if fig.running == 0 else None
    if job.status not in ACTIVE:
        return None
    if job.status == JobStatus.PENDING and (fig.started > 0 or fig.finished > 0):
        return JobStatus.RUNNING
    done_feeding = (
        fig.accepted >= job.target if job.target is not None else job.fed >= job.topic_count
    )
    settled = in_flight(job, fig) == 0 and fig.running == 0
    if job.status == JobStatus.RUNNING and job.fed > 0 and done_feeding and settled:
        return JobStatus.COMPLETED
    return None
