"""Initial schema: the five tables of docs/contract.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 13:28:54.099970
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("context_id", sa.String(length=128), nullable=False),
        sa.Column("language", sa.String(length=16), server_default="en", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bundle", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("worker_statuses", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "source = 'realtime' OR event_id IS NOT NULL",
            name=op.f("ck_analysis_runs_kafka_has_event"),
        ),
        sa.CheckConstraint("source IN ('kafka', 'realtime')", name=op.f("ck_analysis_runs_source")),
        sa.CheckConstraint(
            "status IN ('ok', 'partial', 'failed')",
            name=op.f("ck_analysis_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
        sa.UniqueConstraint("event_id", name=op.f("uq_analysis_runs_event_id")),
    )
    op.create_index(
        op.f("ix_analysis_runs_context_id"),
        "analysis_runs",
        ["context_id"],
        unique=False,
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("topic_id", sa.String(length=128), nullable=True),
        sa.Column("topic_title", sa.String(length=500), nullable=False),
        sa.Column("topic", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("participants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("min_turns", sa.Integer(), nullable=False),
        sa.Column("max_turns", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="pending", nullable=False),
        sa.Column("turn_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("quality_breakdown", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed')",
            name=op.f("ck_conversations_status"),
        ),
        sa.CheckConstraint(
            "min_turns >= 1 AND min_turns <= max_turns",
            name=op.f("ck_conversations_turns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("event_id", name=op.f("uq_conversations_event_id")),
    )
    op.create_index(
        op.f("ix_conversations_status_created_at"),
        "conversations",
        ["status", "created_at"],
        unique=False,
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source_topic", sa.String(length=255), nullable=True),
        sa.Column("source_partition", sa.Integer(), nullable=True),
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('conversation', 'analysis')", name=op.f("ck_events_kind")),
        sa.CheckConstraint(
            "status IN ('received', 'dispatched', 'done', 'dead_lettered')",
            name=op.f("ck_events_status"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_status_updated_at"),
        "events",
        ["status", "updated_at"],
        unique=False,
    )
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_ref", sa.String(length=200), nullable=True),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("owner_type", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.String(length=128), nullable=True),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd",
            sa.Numeric(precision=14, scale=8),
            server_default="0",
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('ok', 'error')", name=op.f("ck_llm_calls_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_calls")),
    )
    op.create_index(
        op.f("ix_llm_calls_owner_type_owner_id"),
        "llm_calls",
        ["owner_type", "owner_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_llm_calls_provider_model_created_at"),
        "llm_calls",
        ["provider", "model", "created_at"],
        unique=False,
    )
    op.create_table(
        "conversation_turns",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("turn_index >= 0", name=op.f("ck_conversation_turns_turn_index")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_turns_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
        sa.UniqueConstraint(
            "conversation_id",
            "turn_index",
            name=op.f("uq_conversation_turns_conversation_id_turn_index"),
        ),
    )


def downgrade() -> None:
    op.drop_table("conversation_turns")
    op.drop_index(op.f("ix_llm_calls_provider_model_created_at"), table_name="llm_calls")
    op.drop_index(op.f("ix_llm_calls_owner_type_owner_id"), table_name="llm_calls")
    op.drop_table("llm_calls")
    op.drop_index(op.f("ix_events_status_updated_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_conversations_status_created_at"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_analysis_runs_context_id"), table_name="analysis_runs")
    op.drop_table("analysis_runs")
