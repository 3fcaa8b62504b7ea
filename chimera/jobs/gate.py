"""What the workers ask of a job at a conversation's boundaries (``chimera.conversation.turns``
asks, tasks translate the answer)."""

from __future__ import annotations

import logging
from typing import Any

from chimera.db.tables import JobStatus
from chimera.events.ids import job_of_event
from chimera.jobs.control import (
    ControlState,
    JobControl,
    StartGate,
    TurnGate,
    start_gate,
    turn_gate,
)
from chimera.jobs.repository import JobRepository

log = logging.getLogger(__name__)

#: Statuses a job leaves for ``budget_exhausted`` when a call does not fit its budget.
EXHAUSTIBLE = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DRAINING)


def job_of(event_id: str, metadata: dict[str, Any] | None) -> str | None:
    """The job of a conversation: its event id says so and its metadata agree."""
    job = job_of_event(event_id)
    if job is None or (metadata or {}).get("job_id") != job:
        return None
    return job


class JobGate:
    def __init__(self, control: JobControl, repo: JobRepository) -> None:
        self.control = control
        self._repo = repo

    def turn(self, job_id: str | None) -> TurnGate:
        return turn_gate(self.control.status(job_id))

    def start(self, job_id: str | None) -> StartGate:
        return start_gate(self.control.status(job_id))

    def status(self, job_id: str | None) -> str | None:
        return self.control.status(job_id)

    def park(self, job_id: str, event_id: str) -> None:
        self.control.park(job_id, event_id)

    def exhausted(self, job_id: str) -> None:
        """A call did not fit the budget: the job moves to ``budget_exhausted`` (once)."""
        row = self._repo.control_row(job_id)
        if row is None or row.status not in EXHAUSTIBLE:
            return
        if self._repo.move(job_id, row.status, JobStatus.BUDGET_EXHAUSTED):
            log.warning("job %s: budget exhausted (%s)", job_id, row.budget_usd)
            self.control.write(
                job_id, ControlState(JobStatus.BUDGET_EXHAUSTED.value, row.budget_usd)
            )
        else:
            self.control.forget(job_id)
