"""Engines and sessions.

Create engines after fork (a pool must not cross a ``fork()``): worker processes
call ``make_engine`` from their process-init hook, never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from chimera.errors import DatabaseUnavailable
from chimera.settings import Settings, redact_url


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


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def translate_db_errors(what: str = "database") -> Iterator[None]:
    """Turn an unreachable-database error into ``DatabaseUnavailable``."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseUnavailable(f"{what} is unreachable: {exc.orig}") from exc


def ping(engine: Engine) -> None:
    """Raise ``DatabaseUnavailable`` unless the database answers ``SELECT 1``."""
    url = redact_url(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"Postgres at {url} does not answer: {exc}") from exc
