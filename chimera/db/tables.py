"""The tables of docs/contract.md, as SQLAlchemy 2 typed models.

Alembic owns the schema (``migrations/``); these models must match it, which
``tests/chimera/test_db.py`` checks by comparing them with a migrated database.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class EventStatus(StrEnum):
    """Where an input event is in its lifecycle (``chimera/events/inbox.py`` moves it).

    Defined beside the table, below ``chimera.events``, so the CHECK constraint is
    built from the same values the inbox writes; the migration spells them out.
    """

    RECEIVED = "received"
    DISPATCHED = "dispatched"
    DONE = "done"
    DEAD_LETTERED = "dead_lettered"


class JobStatus(StrEnum):
    """Where a job is (``chimera/jobs/`` moves it); the migration spells the values out."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    DRAINING = "draining"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    BUDGET_EXHAUSTED = "budget_exhausted"
    FAILED = "failed"


EVENT_STATUSES = tuple(s.value for s in EventStatus)
JOB_STATUSES = tuple(s.value for s in JobStatus)
CONVERSATION_STATUSES = ("pending", "running", "completed", "failed")
RUN_STATUSES = ("ok", "partial", "failed")
RUN_SOURCES = ("kafka", "realtime")
LLM_CALL_STATUSES = ("ok", "error")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({listed})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Event(Base):
    """The inbox: every accepted input event, and how far it got."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_one_of("status", EVENT_STATUSES), name="status"),
        CheckConstraint(_one_of("kind", ("conversation", "analysis")), name="kind"),
        Index(None, "status", "updated_at"),
    )

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32), server_default=EventStatus.RECEIVED.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    source_topic: Mapped[str | None] = mapped_column(String(255))
    source_partition: Mapped[int | None] = mapped_column(Integer)
    source_offset: Mapped[int | None] = mapped_column(BigInteger)
    #: The record's Kafka key and headers ([name, value] pairs, base64), for dead letters.
    source_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    source_headers: Mapped[list[Any] | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(Base):
    """One synthesised conversation."""

    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint(_one_of("status", CONVERSATION_STATUSES), name="status"),
        CheckConstraint("min_turns >= 1 AND min_turns <= max_turns", name="turns"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    topic_id: Mapped[str | None] = mapped_column(String(128))
    topic_title: Mapped[str] = mapped_column(String(500))
    topic: Mapped[dict[str, Any]]
    participants: Mapped[list[Any]]
    min_turns: Mapped[int] = mapped_column(Integer)
    max_turns: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), server_default="pending")
    turn_count: Mapped[int] = mapped_column(Integer, server_default="0")
    quality_score: Mapped[float | None] = mapped_column(Float)
    quality_breakdown: Mapped[dict[str, Any] | None]
    #: The verdict of a finished conversation (null until then, and for rows finished before it).
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    #: Why it was rejected: ``low_score``, ``defect:<name>``, ``near_duplicate``.
    rejection_reasons: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    #: The earlier conversation it nearly repeats (rejected ``near_duplicate``).
    duplicate_of: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    #: The job that asked for it, if any (``chimera/jobs/``).
    job_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("jobs.id"), index=True)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """A dataset of a chosen size: its spec, its status and how far feeding got.

    Its figures are derived from its conversations and their LLM calls, never kept here.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_one_of("status", JOB_STATUSES), name="status"),
        CheckConstraint("fed >= 0 AND topic_count >= 0", name="counts"),
        Index(None, "status", "priority"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32), server_default=JobStatus.PENDING.value)
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    topic_count: Mapped[int] = mapped_column(Integer, server_default="0")
    #: The feeding cursor: `conversation.new` events published so far (positions 0..fed-1).
    fed: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobTopic(Base):
    """A job's topics in file order (position 0..topic_count-1), for feeding and cycling."""

    __tablename__ = "job_topics"

    job_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[dict[str, Any]]


class ConversationTurn(Base):
    """One turn of a transcript."""

    __tablename__ = "conversation_turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "turn_index"),
        CheckConstraint("turn_index >= 0", name="turn_index"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    turn_index: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    latency_ms: Mapped[float] = mapped_column(Float, server_default="0")
    created_at: Mapped[datetime] = _now()


class AnalysisRun(Base):
    """One analysis (four analyses aggregated)."""

    __tablename__ = "analysis_runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        CheckConstraint(_one_of("source", RUN_SOURCES), name="source"),
        CheckConstraint("source = 'realtime' OR event_id IS NOT NULL", name="kafka_has_event"),
        Index(None, "context_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # NULL for realtime runs; Postgres allows many NULLs under a unique constraint.
    event_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    context_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(16), server_default="en")
    status: Mapped[str] = mapped_column(String(16))
    bundle: Mapped[dict[str, Any]]
    worker_statuses: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LLMCall(Base):
    """Audit of every LLM call (one row per attempt)."""

    __tablename__ = "llm_calls"
    __table_args__ = (
        CheckConstraint(_one_of("status", LLM_CALL_STATUSES), name="status"),
        Index(None, "owner_type", "owner_id"),
        Index(None, "provider", "model", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Given by the writer: a batch retried after a lost COMMIT reply inserts nothing twice.
    call_id: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    prompt_ref: Mapped[str | None] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64))
    owner_type: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(128))
    step: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    latency_ms: Mapped[float] = mapped_column(Float, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 8), server_default="0")
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = _now()


#: A judgement's outcome (``chimera/quality/judge.py``); the migration spells them out.
JUDGEMENT_STATUSES = ("judged", "refused", "failed")
#: A pairwise check's verdict: the better conversation, a tie, or two orders disagreeing.
PAIRWISE_VERDICTS = ("a", "b", "tie", "inconsistent")


class ConversationJudgement(Base):
    """The LLM judge's rubric of one conversation (one per conversation and judge model).

    Its cost is in ``llm_calls`` (owner the conversation, task ``judge``), never here.
    """

    __tablename__ = "conversation_judgements"
    __table_args__ = (
        CheckConstraint(_one_of("status", JUDGEMENT_STATUSES), name="status"),
        CheckConstraint("overall IS NULL OR (overall >= 1 AND overall <= 5)", name="overall"),
        UniqueConstraint(
            "conversation_id",
            "judge_provider",
            "judge_model",
            name="uq_conversation_judgements_judge",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The judge's route and model; empty when no judge could be chosen (then refused).
    judge_provider: Mapped[str] = mapped_column(String(32))
    judge_model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    prompt_ref: Mapped[str | None] = mapped_column(String(200))
    rubric: Mapped[dict[str, Any] | None]
    overall: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _now()


class ConversationComparison(Base):
    """One pairwise check by the LLM judge, asked in both orders."""

    __tablename__ = "conversation_comparisons"
    __table_args__ = (
        CheckConstraint(_one_of("verdict", PAIRWISE_VERDICTS), name="verdict"),
        UniqueConstraint(
            "conversation_a",
            "conversation_b",
            "judge_provider",
            "judge_model",
            name="uq_conversation_comparisons_pair",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    conversation_a: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    conversation_b: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    judge_provider: Mapped[str] = mapped_column(String(32))
    judge_model: Mapped[str] = mapped_column(String(200))
    #: The better one named when asked (A, B) and when asked (B, A), each as ``a``/``b``/``tie``.
    first: Mapped[str] = mapped_column(String(8))
    second: Mapped[str] = mapped_column(String(8))
    verdict: Mapped[str] = mapped_column(String(16))
    #: With an inconsistent verdict: the position both answers favoured (``first``/``second``).
    position_bias: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = _now()


TABLE_NAMES = tuple(Base.metadata.tables)
