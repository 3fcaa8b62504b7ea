"""Export completed conversations from Postgres as JSON lines.

Conversations stream in a stable order -- ``(created_at, id)`` -- one keyset page at a time
(``PAGE_SIZE`` conversations and their turns per round trip), so memory stays bounded
however many there are and no transaction is held open while the output is written.  Only
``completed`` conversations are exported, and of those only the accepted ones
(``conversations.accepted``, the verdict finalise stored) unless ``include_rejected``
asks for all of them, each line's metadata then carrying ``accepted``,
``rejection_reasons`` and ``duplicate_of``.  A stored row that no longer fits the models
(hand-edited, say) is logged and skipped rather than ending the export, and counted as
``unreadable`` in ``skipped`` when the caller passes one; so is a row the driver cannot
decode (JSON nested deeper than Python's parser goes, an integer of more than 4,300
digits), which is then read again alone so the rest of its page is still written
(``read_page``).  Whatever text a row holds, each record is one line of valid UTF-8 JSON:
line breaks and control characters are escaped, U+2028/U+2029 too (``to_jsonl``), and a
record that is not Unicode text (an unpaired surrogate; PostgreSQL stores none) is skipped
as unreadable rather than written in part.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, Select, select, tuple_

from chimera.conversation.formats import FORMATS, ExportedConversation, Format, to_jsonl
from chimera.db.errors import database_errors
from chimera.db.tables import Conversation, ConversationTurn
from chimera.models.conversation import TopicSpec
from chimera.models.participants import Participant
from chimera.models.transcript import TranscriptTurn
from chimera.untrusted import clip

log = logging.getLogger(__name__)

#: Conversations fetched per round trip.
PAGE_SIZE: Final = 200
#: Why a stored conversation was not written although it was asked for.
UNREADABLE: Final = "unreadable"

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
    skipped: dict[str, int] | None = None,
    include_rejected: bool = False,
) -> int:
    """Write accepted conversations to ``out``, one JSON line each; return how many.

    ``include_rejected`` writes every completed one, with its verdict in the metadata;
    ``min_quality`` keeps those scored at least that (unscored ones are left out);
    ``since`` keeps those created at or after it (a naive datetime is taken as UTC).
    ``skipped``, when given, counts the conversations left out by reason (``unreadable``).
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
        rows, turns = _page(
            engine, after, size, min_quality, since, include_rejected=include_rejected
        )
        for row in rows:
            line = None
            if isinstance(row, Row):
                verdict = verdict_of(row) if include_rejected else None
                record = record_of(row, turns.get(row.id, []), verdict=verdict)
                line = None if record is None else jsonl_line(record, fmt)
            if line is None:
                if skipped is not None:
                    skipped[UNREADABLE] = skipped.get(UNREADABLE, 0) + 1
                continue
            out.write(line)
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
    *,
    include_rejected: bool = False,
) -> tuple[Sequence[Row[Any] | UnreadableRow], dict[str, list[dict[str, Any]]]]:
    query = select(Conversation.__table__).where(Conversation.status == "completed")
    if not include_rejected:
        query = query.where(Conversation.accepted.is_(True))
    if min_quality is not None:
        query = query.where(Conversation.quality_score >= min_quality)
    if since is not None:
        query = query.where(Conversation.created_at >= since)
    if after is not None:
        query = query.where(tuple_(Conversation.created_at, Conversation.id) > tuple_(*after))
    query = query.order_by(Conversation.created_at, Conversation.id).limit(size)
    with database_errors("cannot read conversations"), engine.connect() as conn:
        rows = read_page(conn, query)
        turns = read_turns(conn, [r.id for r in rows if isinstance(r, Row)])
    return rows, turns


@dataclass(frozen=True)
class UnreadableRow:
    """A ``conversations`` row the driver could not decode: its keys, and why."""

    id: str
    created_at: datetime
    reason: str


def read_page(conn: Connection, query: Select[Any]) -> list[Row[Any] | UnreadableRow]:
    """The rows of ``query`` (ordered ``created_at, id``), each decoded alone if the page
    as a whole cannot be: a row the driver cannot decode is an :class:`UnreadableRow`."""
    try:
        return list(conn.execute(query).all())
    except (ValueError, RecursionError):  # a JSON column Python cannot load
        pass
    c = Conversation.__table__.c
    out: list[Row[Any] | UnreadableRow] = []
    for created_at, cid in conn.execute(query.with_only_columns(c.created_at, c.id)).all():
        try:
            out.append(conn.execute(query.where(c.id == cid)).one())
        except (ValueError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else clip(str(exc), 120)
            log.warning(
                "conversation %r skipped: its stored JSON cannot be read: %s", clip(cid), why
            )
            out.append(UnreadableRow(cid, created_at, why))
    return out


def jsonl_line(record: ExportedConversation, fmt: Format) -> str | None:
    """``record`` as one JSON line with its line break, or None (logged) if it is not
    Unicode text and so cannot be written as UTF-8."""
    line = to_jsonl(record, fmt) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        log.warning(
            "conversation %r skipped: it holds no Unicode text: %s", clip(record.id), exc.reason
        )
        return None
    return line


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


def verdict_of(row: Row[Any]) -> dict[str, Any]:
    """A stored conversation's verdict as an exported line's metadata carries it."""
    reasons = row.rejection_reasons if isinstance(row.rejection_reasons, list) else []
    return {
        "accepted": row.accepted,
        "rejection_reasons": [str(r) for r in reasons],
        "duplicate_of": row.duplicate_of,
    }


def record_of(
    row: Row[Any],
    turns: list[dict[str, Any]],
    lineage: dict[str, Any] | None = None,
    *,
    verdict: dict[str, Any] | None = None,
) -> ExportedConversation | None:
    """The exported form of a ``conversations`` row, or None (logged) if it no longer
    validates."""
    quality = row.quality_breakdown if isinstance(row.quality_breakdown, dict) else {}
    metadata = row.metadata if isinstance(row.metadata, dict) else {}
    # The engine stores the whole report (quality.v2's QualityV2Report, or quality.v1's
    # QualityReport on older rows); foreign rows may hold the bare breakdown.
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
            verdict=verdict,
        )
    except ValidationError as exc:
        log.warning(
            "conversation %s skipped: its stored form does not validate: %s", clip(row.id), exc
        )
        return None
