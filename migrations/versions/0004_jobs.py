"""jobs, job_topics and conversations.job_id: datasets of a chosen size.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Spelled out (a migration never imports the code it migrates): JobStatus's values.
JOB_STATUSES = (
    "pending",
    "running",
    "paused",
    "draining",
    "completed",
    "cancelled",
    "budget_exhausted",
    "failed",
)


def upgrade() -> None:
    listed = ", ".join(f"'{s}'" for s in JOB_STATUSES)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(32), server_default="pending", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("topic_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fed", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({listed})", name=op.f("ck_jobs_status")),
        sa.CheckConstraint("fed >= 0 AND topic_count >= 0", name=op.f("ck_jobs_counts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_status_priority"), "jobs", ["status", "priority"])
    op.create_table(
        "job_topics",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("topic", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_topics_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_job_topics")),
    )
    op.add_column("conversations", sa.Column("job_id", sa.String(64), nullable=True))
    op.create_foreign_key(
        op.f("fk_conversations_job_id_jobs"), "conversations", "jobs", ["job_id"], ["id"]
    )
    op.create_index(op.f("ix_conversations_job_id"), "conversations", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_job_id"), table_name="conversations")
    op.drop_constraint(op.f("fk_conversations_job_id_jobs"), "conversations", type_="foreignkey")
    op.drop_column("conversations", "job_id")
    op.drop_table("job_topics")
    op.drop_index(op.f("ix_jobs_status_priority"), table_name="jobs")
    op.drop_table("jobs")
