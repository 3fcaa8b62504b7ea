"""llm_calls.call_id: each row's own id, so a batch retried after a lost COMMIT reply
(the rows were written, the writer saw an error) inserts nothing twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 22:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this revision have none (NULLs never conflict).
    op.add_column("llm_calls", sa.Column("call_id", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_llm_calls_call_id"), "llm_calls", ["call_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_llm_calls_call_id"), table_name="llm_calls")
    op.drop_column("llm_calls", "call_id")
