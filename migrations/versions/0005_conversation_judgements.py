"""conversation_judgements and conversation_comparisons: the LLM judge's verdicts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-15 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Spelled out (a migration never imports the code it migrates): JUDGEMENT_STATUSES and
#: PAIRWISE_VERDICTS of chimera.db.tables.
JUDGEMENT_STATUSES = ("judged", "refused", "failed")
PAIRWISE_VERDICTS = ("a", "b", "tie", "inconsistent")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "conversation_judgements",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("judge_provider", sa.String(32), nullable=False),
        sa.Column("judge_model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prompt_ref", sa.String(200), nullable=True),
        sa.Column("rubric", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("overall", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"status IN ({_listed(JUDGEMENT_STATUSES)})",
            name=op.f("ck_conversation_judgements_status"),
        ),
        sa.CheckConstraint(
            "overall IS NULL OR (overall >= 1 AND overall <= 5)",
            name=op.f("ck_conversation_judgements_overall"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_judgements_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_judgements")),
        sa.UniqueConstraint(
            "conversation_id",
            "judge_provider",
            "judge_model",
            name=op.f("uq_conversation_judgements_judge"),
        ),
    )
    op.create_index(
        op.f("ix_conversation_judgements_job_id"), "conversation_judgements", ["job_id"]
    )
    op.create_table(
        "conversation_comparisons",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("conversation_a", sa.String(64), nullable=False),
        sa.Column("conversation_b", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("judge_provider", sa.String(32), nullable=False),
        sa.Column("judge_model", sa.String(200), nullable=False),
        sa.Column("first", sa.String(8), nullable=False),
        sa.Column("second", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("position_bias", sa.String(8), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"verdict IN ({_listed(PAIRWISE_VERDICTS)})",
            name=op.f("ck_conversation_comparisons_verdict"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_a"],
            ["conversations.id"],
            name=op.f("fk_conversation_comparisons_conversation_a_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_b"],
            ["conversations.id"],
            name=op.f("fk_conversation_comparisons_conversation_b_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_comparisons")),
        sa.UniqueConstraint(
            "conversation_a",
            "conversation_b",
            "judge_provider",
            "judge_model",
            name=op.f("uq_conversation_comparisons_pair"),
        ),
    )
    op.create_index(
        op.f("ix_conversation_comparisons_job_id"), "conversation_comparisons", ["job_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_comparisons_job_id"), table_name="conversation_comparisons")
    op.drop_table("conversation_comparisons")
    op.drop_index(op.f("ix_conversation_judgements_job_id"), table_name="conversation_judgements")
    op.drop_table("conversation_judgements")
