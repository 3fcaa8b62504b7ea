"""Jobs in Postgres: the ``jobs`` row, its topics, its figures."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Float, String, and_, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, Job, JobStatus, JobTopic, LLMCall
from chimera.jobs.control import ControlState, check_move
from chimera.jobs.figures import Figures, figures
from chimera.jobs.plan import FINAL, WATCHED, JobView

#: Topics written per INSERT while a job is created.
TOPIC_BATCH = 1_000


@dataclass(frozen=True)
class StoredJob:
    """A ``jobs`` row with its figures, as readers see it."""

    id: str
    name: str
    spec: dict[str, Any]
    status: str
    priority: int
    topic_count: int
    fed: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    figures: Figures

    @property
    def view(self) -> JobView:
        return JobView(self.status, self.topic_count, self.fed, self.spec.get("target"))

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "figures"}
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        return out | {"figures": self.figures.as_dict()}


class JobRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, job_id: str, spec: dict[str, Any], topics: Iterable[dict[str, Any]], count: int
    ) -> bool:
        """The job and its topics, in one transaction; False (and nothing written) if the
        job exists already.  ``topics`` is consumed in batches."""
        row = {
            "id": job_id,
            "name": spec["name"],
            "spec": spec,
            "priority": spec.get("priority", 0),
            "topic_count": count,
        }
        with database_errors("cannot create the job", job_id=job_id), self._engine.begin() as conn:
            made = conn.execute(
                insert(Job).values(**row).on_conflict_do_nothing().returning(Job.id)
            ).first()
            if made is None:
                return False
            positions = itertools.count()
            it = iter(topics)
            while batch := list(itertools.islice(it, TOPIC_BATCH)):
                conn.execute(
                    insert(JobTopic),
                    [{"job_id": job_id, "position": next(positions), "topic": t} for t in batch],
                )
        return True

    def ensure_open(self, job_id: str, spec: dict[str, Any]) -> str:
        """A job without topics (the topic queue's), created ``running`` if missing; its
        status.  An existing one keeps its status and its ``budget_usd``; the rest of its
        spec becomes ``spec`` (written only when it differs)."""
        stmt = insert(Job).values(
            id=job_id,
            name=spec["name"],
            spec=spec,
            priority=spec.get("priority", 0),
            topic_count=0,
            status=JobStatus.RUNNING.value,
            started_at=func.now(),
        )
        key = literal("budget_usd", String)
        kept = func.jsonb_strip_nulls(func.jsonb_build_object(key, Job.spec.op("->")(key)))
        stmt = stmt.on_conflict_do_update(
            index_elements=[Job.id],
            set_={
                "spec": stmt.excluded.spec.op("||")(kept),
                "name": stmt.excluded.name,
                "updated_at": func.now(),
            },
            where=Job.spec.op("-")(key).is_distinct_from(stmt.excluded.spec),
        )
        with database_errors("cannot create the job", job_id=job_id), self._engine.begin() as conn:
            conn.execute(stmt)
            return str(conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one())

    def get(self, job_id: str) -> StoredJob | None:
        with database_errors("cannot read a job", job_id=job_id), self._engine.connect() as conn:
            row = conn.execute(select(Job.__table__).where(Job.id == job_id)).first()
            return None if row is None else _stored(conn, row._mapping)

    def list_jobs(self, *, limit: int = 100, active_only: bool = False) -> list[StoredJob]:
        """Newest first (``active_only``: the jobs the feeder looks at, pending, running,
        draining or cancelled within the hour; highest priority first, then oldest)."""
        stmt = select(Job.__table__)
        if active_only:
            recent = func.now() - text("interval '1 hour'")
            stmt = stmt.where(
                or_(
                    Job.status.in_([s.value for s in WATCHED]),
                    and_(Job.status == JobStatus.CANCELLED.value, Job.updated_at > recent),
                )
            )
            stmt = stmt.order_by(Job.priority.desc(), Job.created_at, Job.id)
        else:
            stmt = stmt.order_by(Job.created_at.desc(), Job.id)
        with database_errors("cannot list jobs"), self._engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit)).all()
            return [_stored(conn, r._mapping) for r in rows]

    def topics_at(self, job_id: str, positions: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The topics at ``positions`` (file order, 0-based)."""
        wanted = sorted(set(positions))
        with (
            database_errors("cannot read a job's topics", job_id=job_id),
            self._engine.connect() as conn,
        ):
            rows = conn.execute(
                select(JobTopic.position, JobTopic.topic).where(
                    JobTopic.job_id == job_id, JobTopic.position.in_(wanted)
                )
            ).all()
        return {int(p): dict(t) for p, t in rows}

    def advance(self, job_id: str, fed: int) -> None:
        """The feeding cursor moves to ``fed`` (never back)."""
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.fed < fed)
            .values(fed=fed, updated_at=func.now())
        )
        self._run(stmt, job_id)

    def move(self, job_id: str, from_status: str, to: JobStatus) -> bool:
        """``from_status`` -> ``to`` (compare-and-set); False if the job had moved;
        ``JobConflict`` for a move the job may never make (``check_move``)."""
        check_move(job_id, from_status, to)
        values: dict[str, Any] = {"status": to.value, "updated_at": func.now()}
        if to == JobStatus.RUNNING:
            values["started_at"] = func.coalesce(Job.started_at, func.now())
        if to in FINAL:
            values["finished_at"] = func.now()
        else:
            values["finished_at"] = None
        stmt = update(Job).where(Job.id == job_id, Job.status == from_status).values(**values)
        with database_errors("cannot update a job", job_id=job_id), self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def control_row(self, job_id: str) -> ControlState | None:
        """The job's status and budget, as ``JobControl`` keeps them (None: no such job)."""
        with database_errors("cannot read a job", job_id=job_id), self._engine.connect() as conn:
            row = conn.execute(select(Job.status, Job.spec).where(Job.id == job_id)).first()
        if row is None:
            return None
        budget = row.spec.get("budget_usd")
        return ControlState(row.status, None if budget is None else float(budget))

    def spent(self, job_id: str) -> Decimal:
        """The cost of every LLM call of the job's conversations (``llm_calls``)."""
        stmt = select(func.coalesce(func.sum(LLMCall.cost_usd), 0)).where(
            LLMCall.owner_type == "conversation",
            LLMCall.owner_id.in_(select(Conversation.id).where(Conversation.job_id == job_id)),
        )
        with (
            database_errors("cannot read a job's spend", job_id=job_id),
            self._engine.connect() as conn,
        ):
            return Decimal(conn.execute(stmt).scalar_one())

    def set_budget(
        self, job_id: str, from_status: str, budget_usd: float, to: JobStatus | None
    ) -> bool:
        """The spec's ``budget_usd`` (and the status, to ``to``) while the job is still in
        ``from_status`` (compare-and-set); False if it had moved."""
        values: dict[str, Any] = {
            "spec": Job.spec.op("||")(
                func.jsonb_build_object(literal("budget_usd", String), literal(budget_usd, Float))
            ),
            "updated_at": func.now(),
        }
        if to is not None:
            values["status"] = to.value
        stmt = update(Job).where(Job.id == job_id, Job.status == from_status).values(**values)
        with database_errors("cannot update a job", job_id=job_id), self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def _run(self, stmt: Any, job_id: str) -> None:
        with database_errors("cannot update a job", job_id=job_id), self._engine.begin() as conn:
            conn.execute(stmt)


def _stored(conn: Any, row: Any) -> StoredJob:
    names = {f.name for f in fields(StoredJob)} - {"figures"}
    return StoredJob(**{k: row[k] for k in names}, figures=figures(conn, row["id"]))
