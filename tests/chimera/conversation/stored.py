"""Conversations stored the way the engine stores them, for the export and CLI tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from chimera.conversation.quality import score_conversation
from chimera.db.tables import Conversation, ConversationTurn
from chimera.quality.score import score_v2
from tests.chimera.conversation import transcripts as tx

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_conversation(
    engine: Engine,
    cid: str,
    *,
    status: str = "completed",
    texts: list[str] = tx.CARS,
    quality: float | None = None,
    created_at: datetime = T0,
    ended_reason: str = "natural_close",
    turn_overrides: dict[str, Any] | None = None,
    version: str = "quality.v2",
    accepted: bool | None = True,
    reasons: list[str] | None = None,
    duplicate_of: str | None = None,
) -> float | None:
    """A conversation row and its turns, stored the way the engine stores them.

    ``version`` picks the scorer of the stored report (``quality.v1``: a row stored before
    ``quality.v2``); a completed one gets the verdict ``accepted`` with ``reasons`` (None
    for rows finished before verdicts were stored).
    """
    turns = tx.transcript(texts)
    report: Any
    if version == "quality.v2":
        report = score_v2(
            turns,
            topic="Should cities ban cars?",
            ended_reason=ended_reason,
            min_turns=5,
            max_turns=10,
        )
    else:
        report = score_conversation(turns, ended_reason=ended_reason, min_turns=5, max_turns=10)
    score = report.score if quality is None else quality
    completed = status == "completed"
    with engine.begin() as conn:
        conn.execute(
            insert(Conversation).values(
                id=cid,
                event_id=f"evt-{cid}",
                topic_id="t-1",
                topic_title="Should cities ban cars?",
                topic={"id": "t-1", "title": "Should cities ban cars?"},
                participants=[
                    {"provider": "anthropic", "model": "claude-sonnet-5-5"},
                    {"provider": "google", "model": "gemini-3.5-flash", "persona": "A planner."},
                ],
                min_turns=5,
                max_turns=10,
                status=status,
                turn_count=len(turns),
                quality_score=score if completed else None,
                quality_breakdown=report.model_dump(mode="json") if completed else None,
                accepted=accepted if completed else None,
                rejection_reasons=(reasons or []) if completed else [],
                duplicate_of=duplicate_of if completed else None,
                metadata_={"batch": "b-7"},
                created_at=created_at,
                completed_at=created_at + timedelta(minutes=1) if completed else None,
            )
        )
        rows = [{"conversation_id": cid, **t.model_dump(), **(turn_overrides or {})} for t in turns]
        conn.execute(insert(ConversationTurn), list(reversed(rows)))  # stored out of order
    return score if completed else None
