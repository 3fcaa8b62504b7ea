"""Reading stored analysis runs (``GET /analysis-runs/<id>``).

Writes belong to the analysis package; this module only reads the
``analysis_runs`` table, so readers need nothing of the analysis machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from chimera.db.errors import database_errors
from chimera.db.tables import AnalysisRun


@dataclass(frozen=True)
class StoredRun:
    """One ``analysis_runs`` row as readers see it."""

    id: str
    event_id: str | None
    context_id: str
    language: str
    status: str
    source: str
    bundle: dict[str, Any]
    worker_statuses: dict[str, Any]
    latency_ms: float | None
    created_at: datetime
    completed_at: datetime | None


def get_run(engine: Engine, run_id: str) -> StoredRun | None:
    """The run ``run_id``, or None if no such run is stored."""
    with database_errors("cannot read analysis runs", run_id=run_id), engine.connect() as conn:
        row = conn.execute(select(AnalysisRun.__table__).where(AnalysisRun.id == run_id)).first()
    if row is None:
        return None
    return StoredRun(**{f.name: row._mapping[f.name] for f in fields(StoredRun)})
