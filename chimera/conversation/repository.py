"""Conversations in Postgres: a row when one starts, the transcript when it ends.

Finishing is one transaction: the conversation row, every turn (insert-or-ignore
on (conversation_id, turn_index)) and the inbox event marked done, so a re-run
finds it all there or none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from chimera import tracing
from chimera.conversation.state import ConversationState
from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, ConversationTurn, Job
from chimera.events.ids import job_of_event
from chimera.events.inbox import EventStatus, settle


@dataclass(frozen=True)
class StoredTurn:
    """One stored turn of a transcript."""

    turn_index: int
    speaker: str
    provider: str
    model: str
    content: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    created_at: datetime


@dataclass(frozen=True)
class StoredConversation:
    """A ``conversations`` row and its turns in order, as readers see them."""

    id: str
    event_id: str
    status: str
    topic: dict[str, Any]
    participants: list[Any]
    min_turns: int
    max_turns: int
    turn_count: int
    quality_score: float | None
    quality_breakdown: dict[str, Any] | None
    #: The verdict of a finished conversation (None before, and for rows without one).
    accepted: bool | None
    rejection_reasons: list[str]
    duplicate_of: str | None
    metadata: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    turns: tuple[StoredTurn, ...]


def _fields(cls: Any, mapping: Any) -> dict[str, Any]:
    """The columns of ``mapping`` that ``cls`` (a dataclass) has fields for."""
    return {f.name: mapping[f.name] for f in fields(cls) if f.name in mapping}


def _row(state: ConversationState, status: str) -> dict[str, Any]:
    return {
        "id": state.conversation_id,
        "event_id": state.event_id,
        "topic_id": state.topic.id,
        "topic_title": state.topic.title,
        "topic": state.topic.model_dump(mode="json"),
        "participants": [p.model_dump(mode="json", exclude_none=True) for p in state.participants],
        "min_turns": state.min_turns,
        "max_turns": state.max_turns,
        "status": status,
        "metadata_": state.metadata,
        "job_id": _job_of(state),
        "created_at": datetime.fromtimestamp(state.created_at, UTC),
    }


def _job_of(state: ConversationState) -> Any:
    """The job of a job's event (its id says so and the metadata agree), if the job exists:
    NULL otherwise, never a foreign-key failure."""
    job = job_of_event(state.event_id)
    if job is None or state.metadata.get("job_id") != job:
        return None
    return select(Job.id).where(Job.id == job).scalar_subquery()


class ConversationRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @tracing.postgres("conversations.started", "INSERT")
    def started(self, state: ConversationState) -> None:
        """The conversation's row, status running (once)."""
        stmt = insert(Conversation).values(**_row(state, "running"))
        self._run(stmt.on_conflict_do_nothing(index_elements=["id"]), state.conversation_id)

    @tracing.postgres("conversations.complete", "UPSERT")
    def complete(
        self,
        state: ConversationState,
        *,
        score: float,
        breakdown: dict[str, Any],
        accepted: bool | None = None,
        rejection_reasons: Sequence[str] = (),
        duplicate_of: str | None = None,
    ) -> None:
        """The row completed with its score, report and verdict (None: not judged), every
        turn, and the inbox event done (one transaction; a completed row is left as it is)."""
        values = _row(state, "completed") | {
            "turn_count": len(state.turns),
            "quality_score": score,
            "quality_breakdown": breakdown,
            "accepted": accepted,
            "rejection_reasons": list(rejection_reasons),
            "duplicate_of": duplicate_of,
            "updated_at": func.now(),
            "completed_at": func.now(),
        }
        upsert = insert(Conversation).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=["id"],
            set_={
                k: upsert.excluded[k]
                for k in (
                    "status",
                    "turn_count",
                    "quality_score",
                    "quality_breakdown",
                    "accepted",
                    "rejection_reasons",
                    "duplicate_of",
                    "updated_at",
                    "completed_at",
                )
            },
            where=Conversation.status != "completed",
        )
        turns = [{"conversation_id": state.conversation_id} | t.model_dump() for t in state.turns]
        with (
            database_errors("cannot store the conversation", conversation_id=state.conversation_id),
            self._engine.begin() as conn,
        ):
            conn.execute(upsert)
            if turns:
                conn.execute(
                    insert(ConversationTurn).on_conflict_do_nothing(
                        index_elements=["conversation_id", "turn_index"]
                    ),
                    turns,
                )
            settle(conn, state.event_id, EventStatus.DONE)

    @tracing.postgres("conversations.failed", "UPSERT")
    def failed(self, state: ConversationState, *, error: str) -> None:
        """Status failed with the error; the inbox event dead-lettered (one transaction)."""
        values = _row(state, "failed") | {
            "turn_count": len(state.turns),
            "error": error[:2_000],
            "updated_at": func.now(),
        }
        upsert = insert(Conversation).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=["id"],
            set_={k: upsert.excluded[k] for k in ("status", "turn_count", "error", "updated_at")},
            where=Conversation.status != "completed",
        )
        with (
            database_errors("cannot record the failure", conversation_id=state.conversation_id),
            self._engine.begin() as conn,
        ):
            conn.execute(upsert)
            settle(conn, state.event_id, EventStatus.DEAD_LETTERED, error=error)

    @tracing.postgres("conversations.restarted", "UPDATE")
    def restarted(self, state: ConversationState) -> None:
        """A failed conversation runs again (its event was replayed): status running."""
        stmt = (
            update(Conversation)
            .where(Conversation.id == state.conversation_id)
            .where(Conversation.status == "failed")
            .values(status="running", error=None, updated_at=func.now())
        )
        self._run(stmt, state.conversation_id)

    def job_min_quality(self, state: ConversationState) -> float | None:
        """The ``min_quality`` of the job that asked for the conversation, if it has one."""
        job = job_of_event(state.event_id)
        if job is None or state.metadata.get("job_id") != job:
            return None
        with (
            database_errors("cannot read a job", conversation_id=state.conversation_id),
            self._engine.connect() as conn,
        ):
            value = conn.execute(
                select(Job.spec["min_quality"].as_float()).where(Job.id == job)
            ).scalar_one_or_none()
        return None if value is None else float(value)

    def running_count(self) -> int:
        """Conversations started and not yet completed or failed."""
        with database_errors("cannot count conversations"), self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Conversation)
                    .where(Conversation.status == "running")
                ).scalar_one()
            )

    def status(self, cid: str) -> str | None:
        with (
            database_errors("cannot read a conversation", conversation_id=cid),
            self._engine.connect() as conn,
        ):
            return conn.execute(
                select(Conversation.status).where(Conversation.id == cid)
            ).scalar_one_or_none()

    def get(self, cid: str) -> StoredConversation | None:
        """The stored conversation ``cid`` with its turns, or None if there is none.

        One repeatable-read transaction: finishing writes the row and the turns
        together, so a reader sees both or neither.
        """
        with (
            database_errors("cannot read a conversation", conversation_id=cid),
            self._engine.connect() as plain,
        ):
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                row = conn.execute(
                    select(Conversation.__table__).where(Conversation.id == cid)
                ).first()
                if row is None:
                    return None
                turns = conn.execute(
                    select(ConversationTurn.__table__)
                    .where(ConversationTurn.conversation_id == cid)
                    .order_by(ConversationTurn.turn_index)
                ).all()
        return StoredConversation(
            **_fields(StoredConversation, row._mapping),
            turns=tuple(StoredTurn(**_fields(StoredTurn, t._mapping)) for t in turns),
        )

    def _run(self, stmt: Any, cid: str) -> None:
        with (
            database_errors("cannot store a conversation", conversation_id=cid),
            self._engine.begin() as conn,
        ):
            conn.execute(stmt)
