"""Database administration: create the database if missing, migrate it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url

from chimera.db.errors import database_errors
from chimera.errors import ConfigError, DatabaseUnavailable, DataRejected
from chimera.settings import Settings, normalize_database_url

log = logging.getLogger(__name__)

#: migrations/ lives beside the chimera package in the repository and the image.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that needs no alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be doubled for ConfigParser interpolation.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _maintenance_url(url: URL) -> URL:
    return url.set(database="postgres")


def _target(url: str) -> tuple[URL, str]:
    try:
        target = make_url(normalize_database_url(url))
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
    return target, _check_name(target.database or "")


def _check_name(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"database name {name!r} may only hold letters, digits, '_' and '-'")
    return name


@contextmanager
def _maintenance(url: str, failure: str) -> Iterator[tuple[Connection, str]]:
    """An autocommit connection to the server's `postgres` database, and the target's name.

    A database error becomes ``DatabaseUnavailable("<failure>: ...")`` (or
    ``DataRejected``, ``chimera.db.errors``).
    """
    target, name = _target(url)
    engine = create_engine(_maintenance_url(target), isolation_level="AUTOCOMMIT")
    try:
        with database_errors(failure.format(name=name)), engine.connect() as conn:
            yield conn, name
    finally:
        engine.dispose()


def database_exists(url: str) -> bool:
    with _maintenance(url, "cannot reach Postgres") as (conn, name):
        query = text("SELECT 1 FROM pg_database WHERE datname = :n")
        return bool(conn.execute(query, {"n": name}).scalar())


def create_database(url: str) -> bool:
    """Create the database ``url`` names if it does not exist; True if created."""
    if database_exists(url):
        return False
    try:
        with _maintenance(url, "cannot create database {name!r}") as (conn, name):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except (DatabaseUnavailable, DataRejected) as exc:  # a race can break a unique index
        if "already exists" in str(exc):  # lost a race with another process
            return False
        raise
    log.info("created database %s", name)
    return True


def drop_database(url: str) -> None:
    """Drop the database ``url`` names (used by tests for scratch databases)."""
    with _maintenance(url, "cannot drop database {name!r}") as (conn, name):
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def upgrade(settings: Settings, revision: str = "head", *, url: str | None = None) -> str:
    """Create the database if missing and migrate it to ``revision``."""
    url = normalize_database_url(url or settings.database_url.get_secret_value())
    create_database(url)
    with database_errors("migration failed"):
        command.upgrade(alembic_config(url), revision)
    return current_revision(url) or "base"


def downgrade(settings: Settings, revision: str, *, url: str | None = None) -> str:
    url = normalize_database_url(url or settings.database_url.get_secret_value())
    with database_errors("downgrade failed"):
        command.downgrade(alembic_config(url), revision)
    return current_revision(url) or "base"


def current_revision(url: str) -> str | None:
    engine = create_engine(normalize_database_url(url))
    try:
        with database_errors("cannot read the schema revision"), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None
    return head
