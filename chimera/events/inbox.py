"""The inbox: every accepted input event, recorded in Postgres before any work,
and the one place an event's status changes.

``Inbox.accept_many`` is the idempotency gate (used through
``chimera.events.intake.accept``): a new event is inserted; the same event
again (same id, same payload hash) is a duplicate; the same id with another
payload is a ``ConflictingDuplicate``.

Status moves received -> dispatched -> done, or -> dead_lettered (from either
in-flight state), through ``settle`` only: ``Inbox.mark`` for a move of its own,
``settle(conn, ...)`` inside the transaction that writes the event's result, so
a result row and its event's final status are committed together.  A final
status is never moved on; only a replay of its dead letter (``Inbox.reset``, by
``chimera dlq replay``) moves a dead-lettered event back to received.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Update, func, select, update
from sqlalchemy.dialects.postgresql import insert

from chimera import tracing
from chimera.codec import EventKind
from chimera.db.errors import database_errors
from chimera.db.tables import Event, EventStatus
from chimera.errors import ConflictingDuplicate

__all__ = [
    "FINAL",
    "IN_FLIGHT",
    "Acceptance",
    "Arrival",
    "EventKind",
    "EventStatus",
    "Inbox",
    "InboxEvent",
    "Source",
    "settle",
]

#: Statuses an event leaves only by a replay (``Inbox.reset``).
FINAL = (EventStatus.DONE, EventStatus.DEAD_LETTERED)
#: Statuses of an event still being worked on; the reconciler looks for stuck ones.
IN_FLIGHT = (EventStatus.RECEIVED, EventStatus.DISPATCHED)
#: ``last_error`` keeps at most this many characters.
MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class Source:
    """Where an event came from, and the record's key and headers: a worker's dead
    letter of the event is the record again (docs/contract.md, "Dead letters")."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Arrival:
    """An event as it arrives, to be recorded."""

    event_id: str
    kind: EventKind
    payload: dict[str, Any]
    payload_hash: str
    source: Source = Source()


@dataclass(frozen=True)
class InboxEvent:
    event_id: str
    kind: str
    payload: dict[str, Any]
    payload_hash: str
    status: EventStatus
    attempts: int
    source: Source
    updated_at: datetime
    last_error: str | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Acceptance:
    """``new`` is True the first time; otherwise ``event`` is what was recorded before."""

    new: bool
    event: InboxEvent

    @property
    def hand_off(self) -> bool:
        """Whether the event still needs its hand-off: it is ``received`` (new, or its
        hand-off may have been lost); any later status makes it a duplicate."""
        return self.event.status is EventStatus.RECEIVED


def _event(row: Any) -> InboxEvent:
    return InboxEvent(
        event_id=row.event_id,
        kind=row.kind,
        payload=row.payload,
        payload_hash=row.payload_hash,
        status=EventStatus(row.status),
        attempts=row.attempts,
        source=Source(
            row.source_topic,
            row.source_partition,
            row.source_offset,
            row.source_key,
            _headers_from_json(row.source_headers),
        ),
        updated_at=row.updated_at,
        last_error=row.last_error,
        created_at=row.created_at,
    )


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def accept(
        self,
        *,
        event_id: str,
        kind: EventKind,
        payload: dict[str, Any],
        payload_hash: str,
        source: Source | None = None,
    ) -> Acceptance:
        """Record the event if new; tell a duplicate from a conflicting reuse of its id."""
        arrival = Arrival(event_id, kind, payload, payload_hash, source or Source())
        (result,) = self.accept_many([arrival])
        if isinstance(result, ConflictingDuplicate):
            raise result
        return result

    @tracing.postgres("inbox.accept", "INSERT")
    def accept_many(self, arrivals: Sequence[Arrival]) -> list[Acceptance | ConflictingDuplicate]:
        """Record a batch of events in one transaction; for each arrival, in order, its
        acceptance or the ``ConflictingDuplicate`` it is.

        An event id that arrives twice in the batch is new (if it is) the first time
        and a duplicate (or a conflict) after; nothing is written if anything fails.
        """
        if not arrivals:
            return []
        first: dict[str, Arrival] = {}
        for arrival in arrivals:
            first.setdefault(arrival.event_id, arrival)
        rows = [
            {
                "event_id": a.event_id,
                "kind": a.kind,
                "payload": a.payload,
                "payload_hash": a.payload_hash,
                "source_topic": a.source.topic,
                "source_partition": a.source.partition,
                "source_offset": a.source.offset,
                "source_key": a.source.key,
                "source_headers": _headers_to_json(a.source.headers),
            }
            for a in first.values()
        ]
        stmt = insert(Event).on_conflict_do_nothing(index_elements=["event_id"]).returning(Event)
        with (
            database_errors(f"cannot record {len(first)} event(s)", event_id=next(iter(first))),
            self._engine.begin() as conn,
        ):
            inserted = {r.event_id: _event(r) for r in conn.execute(stmt, rows)}
            recorded = dict(inserted)
            if others := [i for i in first if i not in inserted]:
                found = conn.execute(select(Event).where(Event.event_id.in_(others)))
                recorded.update((r.event_id, _event(r)) for r in found)
        results: list[Acceptance | ConflictingDuplicate] = []
        seen: set[str] = set()
        for a in arrivals:
            event = recorded[a.event_id]
            if event.payload_hash != a.payload_hash or event.kind != a.kind:
                results.append(
                    ConflictingDuplicate(
                        f"event_id {a.event_id!r} was already used for another {event.kind} "
                        "payload",
                        event_id=a.event_id,
                    )
                )
                continue
            new = a.event_id in inserted and a.event_id not in seen
            seen.add(a.event_id)
            results.append(Acceptance(new, event))
        return results

    def get(self, event_id: str) -> InboxEvent | None:
        with (
            database_errors("cannot read event", event_id=event_id),
            self._engine.connect() as conn,
        ):
            row = conn.execute(select(Event).where(Event.event_id == event_id)).one_or_none()
        return _event(row) if row is not None else None

    @tracing.postgres("inbox.mark", "UPDATE")
    def mark(
        self,
        event_ids: str | Sequence[str],
        status: EventStatus,
        *,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        """Move one event (or several, in one statement) on: ``settle`` in a
        transaction of its own."""
        ids = [event_ids] if isinstance(event_ids, str) else list(event_ids)
        if not ids:
            return
        with (
            database_errors(f"cannot update {len(ids)} event(s)", event_id=ids[0]),
            self._engine.begin() as conn,
        ):
            settle(conn, ids, status, error=error, count_attempt=count_attempt)

    @tracing.postgres("inbox.reset", "UPDATE")
    def reset(
        self, event_id: str, *, payload_hash: str | None = None, record: Source | None = None
    ) -> bool:
        """Put a dead-lettered event back to ``received``; True if it was moved.

        A replayed dead letter must run again, and the bridge hands a known event
        off only while it is ``received``.  Only ``dead_lettered`` moves: a ``done``
        event is never re-run, an in-flight one is left to finish.  With
        ``payload_hash``, only the event recorded with that payload moves, so a
        conflicting duplicate's replay cannot re-run the original.  With ``record``
        (the replayed record's key and headers), those are kept instead of the first
        arrival's, so a dead letter of the replay carries its ``x-replay-count``.
        Attempts and the last error are kept for the record.
        """
        stmt = (
            update(Event)
            .where(Event.event_id == event_id)
            .where(Event.status == EventStatus.DEAD_LETTERED)
            .values(status=EventStatus.RECEIVED, updated_at=func.now(), completed_at=None)
        )
        if payload_hash is not None:
            stmt = stmt.where(Event.payload_hash == payload_hash)
        if record is not None:
            stmt = stmt.values(
                source_key=record.key, source_headers=_headers_to_json(record.headers)
            )
        with database_errors("cannot reset event", event_id=event_id), self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def stuck(self, *, kind: EventKind, older_than_s: float, limit: int = 100) -> list[InboxEvent]:
        """Events still in flight (received or dispatched) untouched for ``older_than_s``."""
        stmt = (
            select(Event)
            .where(Event.kind == kind)
            .where(Event.status.in_(IN_FLIGHT))
            .where(
                Event.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s)
            )
            .order_by(Event.updated_at)
            .limit(limit)
        )
        with database_errors("cannot scan the inbox"), self._engine.connect() as conn:
            return [_event(r) for r in conn.execute(stmt)]


def settle(
    conn: Connection,
    event_ids: str | Sequence[str],
    status: EventStatus,
    *,
    error: str | None = None,
    count_attempt: bool = False,
) -> None:
    """Move events to ``status`` on ``conn`` (inside the caller's transaction).

    The one statement by which an event's status changes (but for a replay's
    ``Inbox.reset``): an event already done or dead-lettered is left as it is,
    whatever the caller asks, so a late or repeated step can never undo an end.
    Moving an event to the status it has (with ``count_attempt``) records a
    re-drive.
    """
    ids = [event_ids] if isinstance(event_ids, str) else list(event_ids)
    if ids:
        conn.execute(_settling(ids, status, error=error, count_attempt=count_attempt))


def _settling(
    event_ids: list[str], status: EventStatus, *, error: str | None, count_attempt: bool
) -> Update:
    values: dict[str, Any] = {"status": EventStatus(status), "updated_at": func.now()}
    if status in FINAL:
        values["completed_at"] = func.now()
    if error is not None:
        values["last_error"] = error[:MAX_ERROR_CHARS]
    if count_attempt:
        values["attempts"] = Event.attempts + 1
    return (
        update(Event)
        .where(Event.event_id.in_(event_ids))
        .where(Event.status.not_in(FINAL))
        .values(**values)
    )


def _headers_to_json(headers: Sequence[tuple[str, bytes]]) -> list[list[str]] | None:
    """Kafka headers as JSONB: [name, value] pairs, both base64.  The value is bytes, and
    a name may hold what JSONB text cannot (a NUL): a hostile header must not make the
    inbox refuse the batch it came in."""
    if not headers:
        return None
    return [[_b64(name.encode("utf-8", "surrogatepass")), _b64(value)] for name, value in headers]


def _headers_from_json(stored: list[Any] | None) -> tuple[tuple[str, bytes], ...]:
    return tuple(
        (base64.b64decode(name).decode("utf-8", "surrogatepass"), base64.b64decode(value))
        for name, value in stored or ()
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
