"""``analysis_runs`` rows: one per run, written once, with the inbox event settled in the
same transaction; what must be published is published before that transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from chimera import tracing
from chimera.db.tables import AnalysisRun, Event
from chimera.errors import DatabaseUnavailable


@dataclass(frozen=True)
class RunRecord:
    id: str
    event_id: str | None
    context_id: str
    language: str
    status: Literal["ok", "partial", "failed"]
    bundle: dict[str, Any]
    worker_statuses: dict[str, Any]
    source: Literal["kafka", "realtime"]
    latency_ms: float | None
    created_at: datetime | None = None


class RunRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def status(self, run_id: str) -> str | None:
        """The recorded run's status; None if it is not recorded."""
        try:
            with self._engine.connect() as conn:
                return conn.execute(
                    select(AnalysisRun.status).where(AnalysisRun.id == run_id)
                ).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"cannot read analysis runs: {exc}", run_id=run_id) from exc

    @tracing.postgres("analysis_runs.reopen", "UPDATE")
    def reopen(self, run_id: str) -> bool:
        """Delete a ``failed`` run so its replayed event can run again; True if deleted.

        Its dead letter keeps what failed; the run that follows writes the one row.
        """
        stmt = (
            delete(AnalysisRun)
            .where(AnalysisRun.id == run_id)
            .where(AnalysisRun.status == "failed")
        )
        try:
            with self._engine.begin() as conn:
                return conn.execute(stmt).rowcount == 1
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(
                f"cannot reopen the analysis run: {exc}", run_id=run_id
            ) from exc

    @tracing.postgres("analysis_runs.record", "UPSERT")
    def record(self, run: RunRecord, *, on_insert: Callable[[], None] | None = None) -> bool:
        """Insert the run (once) and settle its inbox event; False if it was there already.

        ``on_insert`` runs inside the transaction after the insert: if it raises (Kafka
        down), nothing is committed and the caller retries; if the process dies after it,
        the retry publishes again under the same event id (at least once).
        """
        values: dict[str, Any] = {
            "id": run.id,
            "event_id": run.event_id,
            "context_id": run.context_id,
            "language": run.language,
            "status": run.status,
            "bundle": run.bundle,
            "worker_statuses": run.worker_statuses,
            "source": run.source,
            "latency_ms": run.latency_ms,
            "completed_at": func.now(),
        }
        if run.created_at is not None:
            values["created_at"] = run.created_at
        stmt = (
            insert(AnalysisRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(AnalysisRun.id)
        )
        try:
            with self._engine.begin() as conn:
                inserted = conn.execute(stmt).scalar_one_or_none() is not None
                if run.event_id is not None:
                    settled = "dead_lettered" if run.status == "failed" else "done"
                    conn.execute(
                        update(Event)
                        .where(Event.event_id == run.event_id)
                        .where(Event.status.not_in(("done", "dead_lettered")))
                        .values(status=settled, updated_at=func.now(), completed_at=func.now())
                    )
                if inserted and on_insert is not None:
                    on_insert()
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(
                f"cannot store the analysis run: {exc}", run_id=run.id
            ) from exc
        return inserted
