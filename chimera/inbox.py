"""The inbox: every accepted input event, recorded in Postgres before any work.

``accept`` is the idempotency gate: a new event is inserted; the same event
again (same id, same payload hash) is a duplicate; the same id with another
payload raises ``ConflictingDuplicate``.  Status moves received -> dispatched
-> done, or -> dead_lettered; only a replay of its dead letter (``reset``, by
``chimera dlq replay``) moves a dead-lettered event back to received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from chimera import tracing
from chimera.db.tables import Event
from chimera.errors import ConflictingDuplicate, DatabaseUnavailable

EventKind = Literal["conversation", "analysis"]
Status = Literal["received", "dispatched", "done", "dead_lettered"]


@dataclass(frozen=True)
class Source:
    """Where an event came from (for the DLQ headers and the audit)."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


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
    status: str
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


def _event(row: Any) -> InboxEvent:
    return InboxEvent(
        event_id=row.event_id,
        kind=row.kind,
        payload=row.payload,
        payload_hash=row.payload_hash,
        status=row.status,
        attempts=row.attempts,
        source=Source(row.source_topic, row.source_partition, row.source_offset),
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
            }
            for a in first.values()
        ]
        stmt = insert(Event).on_conflict_do_nothing(index_elements=["event_id"]).returning(Event)
        try:
            with self._engine.begin() as conn:
                inserted = {r.event_id: _event(r) for r in conn.execute(stmt, rows)}
                recorded = dict(inserted)
                if others := [i for i in first if i not in inserted]:
                    found = conn.execute(select(Event).where(Event.event_id.in_(others)))
                    recorded.update((r.event_id, _event(r)) for r in found)
        except SQLAlchemyError as exc:
            ids = list(first)
            raise DatabaseUnavailable(
                f"cannot record {len(ids)} event(s): {exc}", event_id=ids[0]
            ) from exc
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
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(Event).where(Event.event_id == event_id)).one_or_none()
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"cannot read event: {exc}", event_id=event_id) from exc
        return _event(row) if row is not None else None

    @tracing.postgres("inbox.mark", "UPDATE")
    def mark(
        self,
        event_id: str,
        status: Status,
        *,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        """Move an event on.  ``done`` and ``dead_lettered`` are never moved back here
        (only ``reset`` puts a dead-lettered event back, for a replay)."""
        values: dict[str, Any] = {"status": status, "updated_at": func.now()}
        if error is not None:
            values["last_error"] = error[:2_000]
        if count_attempt:
            values["attempts"] = Event.attempts + 1
        self._move([event_id], status, values)

    @tracing.postgres("inbox.mark", "UPDATE")
    def mark_many(self, event_ids: Sequence[str], status: Status) -> None:
        """Move several events on at once (as ``mark``, in one statement)."""
        if event_ids:
            self._move(event_ids, status, {"status": status, "updated_at": func.now()})

    def _move(self, event_ids: Sequence[str], status: Status, values: dict[str, Any]) -> None:
        if status in ("done", "dead_lettered"):
            values["completed_at"] = func.now()
        stmt = (
            update(Event)
            .where(Event.event_id.in_(list(event_ids)))
            .where(Event.status.not_in(("done", "dead_lettered")))
            .values(**values)
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(stmt)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(
                f"cannot update {len(event_ids)} event(s): {exc}", event_id=event_ids[0]
            ) from exc

    @tracing.postgres("inbox.reset", "UPDATE")
    def reset(self, event_id: str, *, payload_hash: str | None = None) -> bool:
        """Put a dead-lettered event back to ``received``; True if it was moved.

        A replayed dead letter must run again, and the bridge hands a known event
        off only while it is ``received``.  Only ``dead_lettered`` moves: a ``done``
        event is never re-run, an in-flight one is left to finish.  With
        ``payload_hash``, only the event recorded with that payload moves, so a
        conflicting duplicate's replay cannot re-run the original.  Attempts and
        the last error are kept for the record.
        """
        stmt = (
            update(Event)
            .where(Event.event_id == event_id)
            .where(Event.status == "dead_lettered")
            .values(status="received", updated_at=func.now(), completed_at=None)
        )
        if payload_hash is not None:
            stmt = stmt.where(Event.payload_hash == payload_hash)
        try:
            with self._engine.begin() as conn:
                return conn.execute(stmt).rowcount == 1
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"cannot reset event: {exc}", event_id=event_id) from exc

    def stuck(self, *, kind: EventKind, older_than_s: float, limit: int = 100) -> list[InboxEvent]:
        """Events still in flight (received or dispatched) untouched for ``older_than_s``."""
        stmt = (
            select(Event)
            .where(Event.kind == kind)
            .where(Event.status.in_(("received", "dispatched")))
            .where(
                Event.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_s)
            )
            .order_by(Event.updated_at)
            .limit(limit)
        )
        try:
            with self._engine.connect() as conn:
                return [_event(r) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"cannot scan the inbox: {exc}") from exc
