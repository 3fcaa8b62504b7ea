"""Job controls: pause, resume, drain, cancel, a budget change; and what they mean for
the workers, the feeder and admission.

The status lives in Postgres (``jobs.status``, moved compare-and-set) and, for the
workers, in Redis beside it (``<prefix>job:{<id>}:control``: status and budget), written
right after each move and rebuilt from Postgres when missing.  Workers read it at each
turn boundary (``turn_gate``), at dispatch (``start_gate``), and the budget guard at each
call, so a control takes effect across the fleet at the next turn.

The topic queue's job (``TOPIC_QUEUE_JOB``) is paused and resumed like any other; drain
and cancel are refused (``check_move``), since it lasts as long as the queue.

Parked conversations (paused or out of budget) keep their state; their event ids wait in
``<prefix>job:{<id>}:parked`` until the job runs again, when the feeder hands them off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import redis

from chimera.db.tables import JobStatus
from chimera.errors import JobConflict
from chimera.events.ids import TOPIC_QUEUE_JOB
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

S = JobStatus

#: Control -> (the statuses it is allowed from, the status it moves to).
CONTROLS: dict[str, tuple[frozenset[JobStatus], JobStatus]] = {
    "pause": (frozenset({S.PENDING, S.RUNNING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.RUNNING),
    "drain": (frozenset({S.PENDING, S.RUNNING, S.PAUSED}), S.DRAINING),
    "cancel": (
        frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.DRAINING, S.BUDGET_EXHAUSTED}),
        S.CANCELLED,
    ),
}

#: Statuses in which a job's budget may be changed.
UPDATABLE = frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.DRAINING, S.BUDGET_EXHAUSTED})
#: Statuses whose conversations park at their next turn boundary.
PARKING = frozenset({S.PAUSED, S.BUDGET_EXHAUSTED})
#: Statuses whose conversations end at their next turn boundary.
ENDING = frozenset({S.CANCELLED, S.FAILED})
#: Statuses in which a conversation not yet started may start.
STARTING = frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.BUDGET_EXHAUSTED})
#: The statuses the topic queue's job (``TOPIC_QUEUE_JOB``) may take: it lasts as long as
#: the queue, so it is never drained, cancelled, completed or failed.
QUEUE_JOB_STATUSES = frozenset({S.RUNNING, S.PAUSED, S.BUDGET_EXHAUSTED})
#: Seconds a parked conversation is marked active (the reconciler leaves it alone).
PARK_HOLD_S = 30 * 24 * 3600.0

TurnGate = Literal["go", "park", "cancel"]
StartGate = Literal["go", "drop"]


def target_of(control: str, status: str) -> JobStatus:
    """The status ``control`` moves a job in ``status`` to; ``JobConflict`` if not allowed,
    ``ValueError`` for an unknown control."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r} (one of {', '.join(CONTROLS)})")
    allowed, to = CONTROLS[control]
    if status not in allowed:
        raise JobConflict(
            f"cannot {control} a job that is {status} (allowed from: {', '.join(sorted(allowed))})",
            status=status,
        )
    return to


def check_move(job_id: str, status: str, to: JobStatus) -> None:
    """``JobConflict`` (naming ``status``, the job's) when ``job_id`` may never take status
    ``to``: the topic queue's job pauses and resumes (paused, its queue drains nothing)
    and may run out of budget, nothing else."""
    if job_id == TOPIC_QUEUE_JOB and to not in QUEUE_JOB_STATUSES:
        raise JobConflict(
            f"the topic queue's job is never {to.value}: it lasts as long as the queue "
            "(pause it to stop the queue's drain, resume it to go on)",
            status=status,
            job_id=job_id,
        )


def after_budget(status: str, budget_usd: float, spent_usd: float) -> JobStatus | None:
    """The status a budget change moves the job to (None: stays); ``JobConflict`` if the
    job is over."""
    if status not in UPDATABLE:
        raise JobConflict(f"cannot update a job that is {status}", status=status)
    if status == S.BUDGET_EXHAUSTED and budget_usd > spent_usd:
        return S.RUNNING
    return None


def turn_gate(status: str | None) -> TurnGate:
    """What a conversation of a job in ``status`` does at its next turn boundary."""
    if status in PARKING:
        return "park"
    if status in ENDING:
        return "cancel"
    return "go"


def start_gate(status: str | None) -> StartGate:
    """Whether a conversation of a job in ``status`` that has not started may start."""
    return "go" if status is None or status in STARTING else "drop"


@dataclass(frozen=True)
class ControlState:
    status: str
    budget_usd: float | None


class JobControl:
    """Each job's control state in Redis, rebuilt from Postgres (``load``) when missing."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        load: Callable[[str], ControlState | None],
    ) -> None:
        self._redis = client
        self._settings = settings
        self._load = load

    def _key(self, job_id: str, part: str) -> str:
        return self._settings.redis_key("job", f"{{{job_id}}}", part)

    def state(self, job_id: str) -> ControlState | None:
        """The job's status and budget (None: no such job)."""
        with redis_errors("cannot read the job's control", job_id=job_id):
            raw = self._redis.hmget(self._key(job_id, "control"), ["status", "budget"])
        if raw[0] is not None:
            status = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
            budget = raw[1].decode() if isinstance(raw[1], bytes) else raw[1]
            return ControlState(status, float(budget) if budget else None)
        found = self._load(job_id)
        if found is not None:
            self.write(job_id, found)
        return found

    def status(self, job_id: str | None) -> str | None:
        if job_id is None:
            return None
        found = self.state(job_id)
        return None if found is None else found.status

    def write(self, job_id: str, state: ControlState) -> None:
        """Written after each move in Postgres."""
        budget = "" if state.budget_usd is None else repr(state.budget_usd)
        with redis_errors("cannot write the job's control", job_id=job_id):
            self._redis.hset(
                self._key(job_id, "control"), mapping={"status": state.status, "budget": budget}
            )

    def forget(self, job_id: str) -> None:
        """Drop the cached state (the next read rebuilds it from Postgres)."""
        with redis_errors("cannot write the job's control", job_id=job_id):
            self._redis.delete(self._key(job_id, "control"))

    # --- parked conversations -----------------------------------------------------------

    def park(self, job_id: str, event_id: str) -> None:
        with redis_errors("cannot park the conversation", job_id=job_id):
            self._redis.sadd(self._key(job_id, "parked"), event_id)

    def parked(self, job_id: str) -> list[str]:
        with redis_errors("cannot read the parked conversations", job_id=job_id):
            raw = self._redis.smembers(self._key(job_id, "parked"))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)

    def take_parked(self, job_id: str) -> list[str]:
        """Every parked conversation of ``job_id``, removed in the same step (a MULTI), so
        two feeds of the job at once (a control's and beat's round) never both take one."""
        with redis_errors("cannot take the parked conversations", job_id=job_id):
            pipe = self._redis.pipeline(transaction=True)
            pipe.smembers(self._key(job_id, "parked"))
            pipe.delete(self._key(job_id, "parked"))
            raw, _ = pipe.execute()
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)
