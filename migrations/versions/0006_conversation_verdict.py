"""conversations.accepted, rejection_reasons, duplicate_of: each finished conversation's verdict.

``accepted`` is null for conversations not finished (and for those finished before this
revision); ``rejection_reasons`` lists why a finished one was rejected (``low_score``,
``defect:<name>``, ``near_duplicate``); ``duplicate_of`` names the conversation it nearly
repeats.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-16 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("accepted", sa.Boolean(), nullable=True))
    op.add_column(
        "conversations",
        sa.Column(
            "rejection_reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column("conversations", sa.Column("duplicate_of", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "duplicate_of")
    op.drop_column("conversations", "rejection_reasons")
    op.drop_column("conversations", "accepted")
