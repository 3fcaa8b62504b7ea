"""Liveness."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Liveness: the process serves requests; checks no dependency."""
    return {"status": "ok"}, 200
