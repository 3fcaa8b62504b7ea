"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.auth import may_read_operator_data
from web.resources import resources

bp = Blueprint("health", __name__)

_NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Liveness: the process serves requests; checks no dependency."""
    return {"status": "ok"}, 200


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Readiness: Redis, Postgres, Kafka and a live Celery worker, each within a short
    timeout.  Not being ready is this probe's answer, not an error: 503.

    Anyone gets the status (probes carry no token); a caller with the API or metrics
    token (or any caller, when neither is set) gets every check's detail too.  The
    report is reused for CHIMERA_READYZ_CACHE_S (``Readiness.report``)."""
    report = resources().readiness.report()
    body = report.as_dict() if may_read_operator_data() else {"status": report.status}
    return body, 200 if report.ready else 503, _NO_STORE
