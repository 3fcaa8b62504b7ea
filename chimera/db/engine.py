"""Engines.

Create engines after fork (a pool must not cross a ``fork()``): worker processes
call ``make_engine`` from their process-init hook, never at import time.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from chimera.settings import Settings


def make_engine(settings: Settings, *, url: str | None = None) -> Engine:
    """An engine with a checked pool sized for the worker's concurrency."""
    return create_engine(
        url or settings.database_url.get_secret_value(),
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=1_800,
        connect_args={"connect_timeout": 5, "application_name": "chimera"},
    )
