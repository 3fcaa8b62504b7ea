"""``analysis_runs`` rows: one per run, written once, with the inbox event settled in the
same transaction; what must be published is published before that transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from chimera import tracing
from chimera.db.errors import database_errors
from chimera.db.tables import AnalysisRun
from chimera.events.inbox import EventStatus, settle


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
        with (
            database_errors("cannot read analysis runs", run_id=run_id),
            self._engine.connect() as conn,
        ):
            return conn.execute(
                select(AnalysisRun.status).where(AnalysisRun.id == run_id)
            ).scalar_one_or_none()

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
        with (
            database_errors("cannot reopen the analysis run", run_id=run_id),
            self._engine.begin() as conn,
        ):
            return conn.execute(stmt).rowcount == 1

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
        with (
            database_errors("cannot store the analysis run", run_id=run.id),
            self._engine.begin() as conn,
        ):
            inserted = conn.execute(stmt).scalar_one_or_none() is not None
            if run.event_id is not None:
                failed = run.status == "failed"
                status = EventStatus.DEAD_LETTERED if failed else EventStatus.DONE
                settle(conn, run.event_id, status)
            if inserted and on_insert is not None:
                on_insert()
        return inserted
