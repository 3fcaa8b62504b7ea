"""The one event-status enum and the ``events`` table's CHECK constraint agree (real
Postgres), and the inbox only ever moves an event forward."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from chimera.codec import payload_hash
from chimera.db.tables import EVENT_STATUSES, Event
from chimera.events.inbox import FINAL, IN_FLIGHT, EventStatus, Inbox


def row(event_id: str, status: str) -> dict[str, Any]:
    payload = {"event_id": event_id, "topic": "Cars?"}
    return {
        "event_id": event_id,
        "kind": "conversation",
        "payload": payload,
        "payload_hash": payload_hash(payload),
        "status": status,
    }


def test_every_status_of_the_enum_is_one_the_table_accepts(db: Any) -> None:
    assert tuple(s.value for s in EventStatus) == EVENT_STATUSES
    assert set(FINAL) | set(IN_FLIGHT) == set(EventStatus)
    with db.begin() as conn:
        for status in EventStatus:
            conn.execute(insert(Event).values(**row(f"evt-{status}", status)))
    with db.connect() as conn:
        stored = conn.execute(select(Event.event_id, Event.status)).all()
    assert sorted(s for _, s in stored) == sorted(EVENT_STATUSES)


@pytest.mark.parametrize("status", ["pending", "DONE", "failed", ""])
def test_a_status_outside_the_enum_is_refused_by_the_table(db: Any, status: str) -> None:
    with pytest.raises(IntegrityError, match="ck_events_status"), db.begin() as conn:
        conn.execute(insert(Event).values(**row("evt-x", status)))


def test_a_final_status_is_never_moved_on(db: Any) -> None:
    inbox = Inbox(db)
    payload = {"event_id": "evt-1", "topic": "Cars?"}
    inbox.accept(
        event_id="evt-1", kind="conversation", payload=payload, payload_hash=payload_hash(payload)
    )
    inbox.mark("evt-1", EventStatus.DISPATCHED)
    inbox.mark("evt-1", EventStatus.DONE)
    inbox.mark("evt-1", EventStatus.DEAD_LETTERED, error="late")
    inbox.mark("evt-1", EventStatus.RECEIVED)
    event = inbox.get("evt-1")
    assert event is not None and event.status is EventStatus.DONE and event.last_error is None
    assert not inbox.reset("evt-1")  # only a dead-lettered event goes back, for a replay
