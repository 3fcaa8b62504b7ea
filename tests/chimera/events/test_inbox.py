"""The inbox keeps the record an event arrived in (key and headers, whatever they hold),
and a replay's reset replaces them with the replayed record's."""

from __future__ import annotations

from typing import Any

from chimera.codec import payload_hash
from chimera.events import intake
from chimera.events.inbox import Arrival, EventStatus, Inbox, Source

HOSTILE = (("h", b"v"), ("nul\x00name", b"\x00\xff\xfe"), ("empty", b""), ("h", b"again"))


def arrival(event_id: str, source: Source) -> Arrival:
    payload = {"event_id": event_id, "topic": "Cars?"}
    return Arrival(event_id, "conversation", payload, payload_hash(payload), source)


def test_the_record_key_and_headers_are_kept_as_they_came(db: Any) -> None:
    inbox = Inbox(db)
    source = Source("conversation.new", 2, 41, b"\x00key", HOSTILE)
    (first,) = intake.accept(inbox, [arrival("evt-1", source)])
    assert not isinstance(first, Exception) and first.new and first.hand_off
    stored = inbox.get("evt-1")
    assert stored is not None and stored.source == source
    (bare,) = intake.accept(inbox, [arrival("evt-2", Source("redis:topics"))])
    assert not isinstance(bare, Exception)
    assert bare.event.source == Source("redis:topics", None, None, None, ())


def test_a_duplicate_is_handed_off_only_while_received(db: Any) -> None:
    inbox = Inbox(db)
    once = arrival("evt-1", Source("conversation.new", 0, 1))
    first, again = intake.accept(inbox, [once, once])
    assert not isinstance(first, Exception) and not isinstance(again, Exception)
    assert (first.new, first.hand_off, again.new, again.hand_off) == (True, True, False, True)
    intake.dispatched(inbox, ["evt-1"])
    (late,) = intake.accept(inbox, [once])
    assert not isinstance(late, Exception) and not late.hand_off
    assert late.event.status is EventStatus.DISPATCHED


def test_a_replays_reset_keeps_the_replayed_records_key_and_headers(db: Any) -> None:
    inbox = Inbox(db)
    intake.accept(inbox, [arrival("evt-1", Source("conversation.new", 0, 1, b"k", (("h", b"v"),)))])
    inbox.mark("evt-1", EventStatus.DEAD_LETTERED)
    replayed = Source(key=b"k", headers=(("h", b"v"), ("x-replay-count", b"1")))
    assert inbox.reset("evt-1", record=replayed)
    event = inbox.get("evt-1")
    assert event is not None and event.status is EventStatus.RECEIVED
    assert (event.source.topic, event.source.key) == ("conversation.new", b"k")
    assert event.source.headers == replayed.headers
