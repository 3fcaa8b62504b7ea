"""events.source_key, events.source_headers: the Kafka key and headers an event arrived
with, so a dead letter a worker writes keeps them (and carries ``x-replay-count``
forward) like one the bridge writes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this revision, and events that came through Redis
    # or that Chimera made, have none.
    op.add_column("events", sa.Column("source_key", sa.LargeBinary(), nullable=True))
    op.add_column(
        "events",
        sa.Column("source_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("events", "source_headers")
    op.drop_column("events", "source_key")
