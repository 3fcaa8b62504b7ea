"""A job's figures, derived from its conversations and their LLM calls (never kept twice).

A completed conversation is accepted when finalise said so (``conversations.accepted``,
``chimera.conversation.closing``); ``yield`` is accepted over finished.  ``rejected``
counts finished conversations not accepted by reason: each reason a completed one was
rejected for (``low_score``, ``defect:<name>``, ``near_duplicate``; ``no_verdict`` for
one finished before verdicts were stored), ``failed``, and the dead-letter reasons below.
A conversation rejected for two reasons counts under both.

An event of the job dead-lettered before its conversation row was written (refused at
start) has no row: it is read from the ``events`` inbox, where the job's event ids
(``job_event_id``; the topic queue's job: every ``topics:`` event) are, and counted
finished and rejected by its dead-letter reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, literal, select

from chimera.db.tables import Conversation, Event, EventStatus, Job, LLMCall
from chimera.errors import ChimeraError, Unrecoverable
from chimera.events.ids import JOB_EVENT_SEPARATOR, TOPIC_EVENT_PREFIX, TOPIC_QUEUE_JOB
from chimera.jobs.progress import RATE_WINDOW_S, eta_s, rate_per_min
from chimera.quality.judge_agreement import JudgeFigures, judge_figures

#: Why a finished conversation was not accepted, besides the reasons its verdict names.
FAILED = "failed"
#: A completed conversation without a verdict (finished before verdicts were stored).
NO_VERDICT = "no_verdict"


@dataclass(frozen=True)
class Figures:
    """How far a job got."""

    started: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    accepted: int = 0
    #: Events dead-lettered before their conversation row existed (no row, finished).
    dead_lettered: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    llm_calls: int = 0
    #: Accepted per minute over the recent window (``chimera.jobs.progress``).
    accepted_per_min: float | None = None
    #: Seconds until the target at that rate (0 once reached; None without a target).
    eta_s: float | None = None
    #: The LLM judge's figures (None: none of the job's conversations was put to it).
    judge: JudgeFigures | None = None

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.dead_lettered

    @property
    def cost_per_accepted_usd(self) -> Decimal | None:
        return self.cost_usd / self.accepted if self.accepted else None

    @property
    def yield_(self) -> float | None:
        """Accepted / finished (None before anything finished)."""
        return self.accepted / self.finished if self.finished else None

    def as_dict(self) -> dict[str, Any]:
        per = self.cost_per_accepted_usd
        return {
            "started": self.started,
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "rejected": dict(self.rejected),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "llm_calls": self.llm_calls,
            "cost_usd": float(self.cost_usd),
            "cost_per_accepted_usd": None if per is None else float(per),
            "yield": self.yield_,
            "accepted_per_min": self.accepted_per_min,
            "eta_s": self.eta_s,
            "judge": None if self.judge is None else self.judge.as_dict(),
        }


def figures(conn: Connection, job_id: str) -> Figures:
    """The figures of ``job_id`` (read in ``conn``'s transaction)."""
    c = Conversation
    completed = c.status == "completed"
    good = and_(completed, c.accepted.is_(True))

    def count(cond: Any) -> Any:
        return func.count(case((cond, literal(1))))

    row = conn.execute(
        select(
            func.count(),
            count(c.status.in_(("pending", "running"))),
            count(completed),
            count(c.status == "failed"),
            count(good),
        ).where(c.job_id == job_id)
    ).one()
    started, running, done, failed, accepted = (int(v) for v in row)
    per_min, target = _rate(conn, job_id, good)
    calls = conn.execute(
        select(
            func.coalesce(func.sum(LLMCall.input_tokens), 0),
            func.coalesce(func.sum(LLMCall.output_tokens), 0),
            func.coalesce(func.sum(LLMCall.cost_usd), 0),
            func.count(),
        ).where(
            LLMCall.owner_type == "conversation",
            LLMCall.owner_id.in_(select(c.id).where(c.job_id == job_id)),
        )
    ).one()
    rejected = rejection_reasons(conn, job_id)
    if failed:
        rejected[FAILED] = rejected.get(FAILED, 0) + failed
    dead = dead_lettered_without_row(conn, job_id)
    for reason, n in dead.items():
        rejected[reason] = rejected.get(reason, 0) + n
    return Figures(
        started=started,
        running=running,
        completed=done,
        failed=failed,
        accepted=accepted,
        dead_lettered=sum(dead.values()),
        rejected=rejected,
        input_tokens=int(calls[0]),
        output_tokens=int(calls[1]),
        cost_usd=Decimal(calls[2]),
        llm_calls=int(calls[3]),
        accepted_per_min=per_min,
        eta_s=eta_s(accepted, target, per_min),
        judge=judge_figures(conn, job_id),
    )


def rejection_reasons(conn: Connection, job_id: str) -> dict[str, int]:
    """The job's completed conversations not accepted, by each reason they were rejected
    for (``no_verdict``: finished before verdicts were stored)."""
    c = Conversation
    reason = func.jsonb_array_elements_text(c.rejection_reasons).table_valued("value")
    rows = conn.execute(
        select(reason.c.value, func.count())
        .select_from(c)
        .join(reason, literal(True))
        .where(c.job_id == job_id, c.status == "completed", c.accepted.is_(False))
        .group_by(reason.c.value)
    ).all()
    out = {str(name): int(n) for name, n in rows}
    unjudged = conn.execute(
        select(func.count()).where(
            c.job_id == job_id, c.status == "completed", c.accepted.is_(None)
        )
    ).scalar_one()
    if unjudged:
        out[NO_VERDICT] = int(unjudged)
    return out


def _rate(conn: Connection, job_id: str, good: Any) -> tuple[float | None, int | None]:
    """The job's accepted per minute over the recent window, and its target."""
    c = Conversation
    since = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, RATE_WINDOW_S)
    in_window = (
        select(func.count())
        .where(c.job_id == job_id, good, c.completed_at >= since)
        .scalar_subquery()
    )
    running = func.extract("epoch", func.now() - Job.started_at)
    row = conn.execute(
        select(in_window, running, Job.spec["target"].as_integer()).where(Job.id == job_id)
    ).first()
    if row is None:
        return None, None
    n, running_s, target = row
    # Not started yet: no rate.
    per_min = None if running_s is None else rate_per_min(int(n), RATE_WINDOW_S, float(running_s))
    return per_min, None if target is None else int(target)


def dead_lettered_without_row(conn: Connection, job_id: str) -> dict[str, int]:
    """The job's events dead-lettered with no conversation row, by dead-letter reason.

    Read through the ``(status, updated_at)`` index: only dead-lettered events are
    scanned, then kept if their id is one of the job's.
    """
    error_class = func.split_part(func.coalesce(Event.last_error, ""), ":", 1)
    prefix = TOPIC_EVENT_PREFIX if job_id == TOPIC_QUEUE_JOB else job_id + JOB_EVENT_SEPARATOR
    rows = conn.execute(
        select(error_class, func.count())
        .where(
            Event.status == EventStatus.DEAD_LETTERED.value,
            Event.event_id.startswith(prefix, autoescape=True),
            ~exists().where(Conversation.event_id == Event.event_id),
        )
        .group_by(error_class)
    ).all()
    out: dict[str, int] = {}
    for name, n in rows:
        reason = reason_named(str(name))
        out[reason] = out.get(reason, 0) + int(n)
    return out


def reason_named(class_name: str) -> str:
    """The dead-letter reason of the error class called ``class_name`` (as the inbox's
    ``last_error`` begins), or ``error`` for a class that names none."""
    todo: list[type[ChimeraError]] = [ChimeraError]
    while todo:
        cls = todo.pop()
        if cls.__name__ == class_name:
            reason = getattr(cls, "dlq_reason", None)
            return reason if isinstance(reason, str) else Unrecoverable.dlq_reason
        todo.extend(cls.__subclasses__())
    return Unrecoverable.dlq_reason
