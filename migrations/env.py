"""Alembic environment: the URL comes from chimera's settings (or the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from chimera.db.tables import Base
from chimera.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # chimera.db.admin passes the URL explicitly; the `alembic` CLI uses settings.
    return config.get_main_option("sqlalchemy.url") or (
        get_settings().database_url.get_secret_value()
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
