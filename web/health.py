"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

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
    timeout.  Not being ready is this probe's answer, not an error: 503 with a report
    of every check."""
    report = resources().readiness.run()
    return report.as_dict(), 200 if report.ready else 503, _NO_STORE
