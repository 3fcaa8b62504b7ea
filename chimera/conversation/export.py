"""Export completed conversations from Postgres as JSON lines.

Conversations stream in a stable order -- ``(created_at, id)`` -- one keyset page at a time
(``PAGE_SIZE`` conversations and their turns per round trip), so memory stays bounded
however many there are and no transaction is held open while the output is written.  Only
``completed`` conversations are exported.  A stored row that no longer fits the models
(hand-edited, say) is logged and skipped rather than ending the export.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, select, tuple_

from chimera.conversation.formats import FORMATS, ExportedConversation, Format, to_jsonl
from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, ConversationTurn
from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant
from chimera.models.transcript import TranscriptTurn

log = logging.getLogger(__name__)

#: Conversations fetched per round trip.
PAGE_SIZE: Final = 200

_Cursor = tuple[datetime, str]
_TURN_COLUMNS: Final = tuple(
    ConversationTurn.__table__.c[name] for name in TranscriptTurn.model_fields
)


def export_conversations(
    engine: Engine,
    out: TextIO,
    *,
    fmt: Format,
    min_quality: float | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Write completed conversations to ``out``, one JSON line each; return how many.

    ``min_quality`` keeps those scored at least that (unscored ones are left out);
    ``since`` keeps those created at or after it (a naive datetime is taken as UTC).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if min_quality is not None and not 0.0 <= min_quality <= 1.0:
        raise ValueError(f"min_quality must be between 0 and 1, got {min_quality}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if page_size < 1:
        raise ValueError(f"page_size must be positive, got {page_size}")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    written = 0
    after: _Cursor | None = None
    while limit is None or written < limit:
        size = page_size if limit is None else min(page_size, limit - written)
        rows, turns = _page(engine, after, size, min_quality, since)
        for row in rows:
            record = record_of(row, turns.get(row.id, []))
            if record is not None:
                out.write(to_jsonl(record, fmt) + "\n")
                written += 1
        if len(rows) < size:
            break
        after = (rows[-1].created_at, rows[-1].id)
    return written


def _page(
    engine: Engine,
    after: _Cursor | None,
    size: int,
    min_quality: float | None,
    since: datetime | None,
) -> tuple[Sequence[Row[Any]], dict[str, list[dict[str, Any]]]]:
    query = select(Conversation.__table__).where(Conversation.status == "completed")
    if min_quality is not None:
        query = query.where(Conversation.quality_score >= min_quality)
    if since is not None:
        query = query.where(Conversation.created_at >= since)
    if after is not None:
        query = query.where(tuple_(Conversation.created_at, Conversation.id) > tuple_(*after))
    query = query.order_by(Conversation.created_at, Conversation.id).limit(size)
    with database_errors("cannot read conversations"), engine.connect() as conn:
        rows = conn.execute(query).all()
        turns = read_turns(conn, [r.id for r in rows])
    return rows, turns


def read_turns(conn: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The turns of the conversations ``ids``, in order, as ``TranscriptTurn`` fields."""
    turns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        turn_rows = conn.execute(
            select(ConversationTurn.conversation_id, *_TURN_COLUMNS)
            .where(ConversationTurn.conversation_id.in_(list(ids)))
            .order_by(ConversationTurn.conversation_id, ConversationTurn.turn_index)
        )
        for t in turn_rows:
            fields = dict(t._mapping)
            turns[fields.pop("conversation_id")].append(fields)
    return turns


def record_of(
    row: Row[Any], turns: list[dict[str, Any]], lineage: dict[str, Any] | None = None
) -> ExportedConversation | None:
    """The exported form of a ``conversations`` row, or None (logged) if it no longer
    validates."""
    quality = row.quality_breakdown if isinstance(row.quality_breakdown, dict) else {}
    metadata = row.metadata if isinstance(row.metadata, dict) else {}
    # The engine stores the whole QualityReport; older or foreign rows may hold the bare
    # breakdown.
    breakdown = quality.get("breakdown", quality)
    components = {
        k: float(v)
        for k, v in (breakdown.items() if isinstance(breakdown, dict) else ())
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "score"
    }
    ended = quality.get("ended_reason", metadata.get("ended_reason"))
    version = quality.get("version")
    try:
        return ExportedConversation(
            id=row.id,
            topic=TopicSpec.model_validate(row.topic or {"title": row.topic_title}),
            participants=tuple(Participant.model_validate(p) for p in row.participants or ()),
            turns=tuple(TranscriptTurn.model_validate(t) for t in turns),
            quality_score=row.quality_score,
            quality_breakdown=components,
            quality_version=version if isinstance(version, str) else None,
            ended_reason=ended if isinstance(ended, str) else None,
            min_turns=row.min_turns,
            max_turns=row.max_turns,
            created_at=row.created_at,
            completed_at=row.completed_at,
            metadata=metadata,
            lineage=lineage,
        )
    except ValidationError as exc:
        log.warning("conversation %s skipped: its stored form does not validate: %s", row.id, exc)
        return None
