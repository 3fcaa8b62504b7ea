"""Per-record processing, without the consumer loop: real Kafka, Postgres and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from bridges.bridge import celery_app
from bridges.records import Outcome, RecordProcessor
from chimera.db.engine import make_engine
from chimera.errors import DatabaseUnavailable, RedisUnavailable
from chimera.events.ids import handoff_task_id
from chimera.events.inbox import Inbox
from chimera.kafka.clients import make_producer
from chimera.settings import Settings
from tests.bridges.conftest import Queued, analysis, conversation, produce, queued, read_topic
from tests.helpers import free_port

DLQ_HEADERS = {
    "x-dlq-reason",
    "x-error-class",
    "x-error-message",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
    "x-event-id",
    "x-attempts",
    "x-replay-count",
    "x-failed-at",
}


@pytest.fixture
def small(bridge_settings: Settings) -> Settings:
    """The test's settings with the smallest event-size limit, to test `too_large` cheaply."""
    return bridge_settings.model_copy(update={"max_event_bytes": 1_024})


@pytest.fixture
def processor(small: Settings, db: Any) -> Iterator[RecordProcessor]:
    producer = make_producer(small)
    app = celery_app(small)
    yield RecordProcessor(small, Inbox(db), producer, app)
    app.close()
    producer.close()


def records_of(settings: Settings, topic: str, items: list[tuple[Any, Any]]) -> list[Any]:
    """Produce ``items`` and read them back as real consumer records, in produce order."""
    metadata = produce(settings, topic, items)
    by_position = {
        (r.partition, r.offset): r for r in read_topic(settings, topic, at_least=len(items))
    }
    return [by_position[(m.partition, m.offset)] for m in metadata]


def inbox_rows(db: Any) -> dict[str, tuple[str, str, int, int]]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT event_id, kind, status, source_partition, source_offset FROM events")
        )
        return {r.event_id: (r.kind, r.status, r.source_partition, r.source_offset) for r in rows}


def test_a_valid_event_is_recorded_then_handed_off(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    (record,) = records_of(small, small.topic_conversation_new, [("t-1", conversation("evt-1"))])
    result = processor.process(record)
    assert (result.outcome, result.event_id, result.kind) == (
        Outcome.HANDED_OFF,
        "evt-1",
        "conversation",
    )
    assert inbox_rows(db) == {
        "evt-1": ("conversation", "dispatched", record.partition, record.offset)
    }
    task_id = handoff_task_id("conversation", "evt-1")
    assert queued(small) == [Queued("chimera.conversation.start", task_id, ["evt-1"], True)]


def test_an_analysis_event_is_handed_to_the_analysis_task(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    (record,) = records_of(small, small.topic_analysis_tasks, [("ctx", analysis("evt-a"))])
    assert processor.process(record).outcome is Outcome.HANDED_OFF
    assert inbox_rows(db)["evt-a"][:2] == ("analysis", "dispatched")
    task_id = handoff_task_id("analysis", "evt-a")
    assert queued(small) == [Queued("chimera.analysis.start", task_id, ["evt-a"], True)]


def test_a_duplicate_is_handed_off_again_only_while_still_received(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    event = conversation("evt-2")
    first, second, third = records_of(small, small.topic_conversation_new, [("t", event)] * 3)
    assert processor.process(first).outcome is Outcome.HANDED_OFF
    assert processor.process(second).outcome is Outcome.DUPLICATE
    assert len(queued(small)) == 1
    # A hand-off lost before the status moved on: the redelivery hands it off again,
    # under the same task id.
    with db.begin() as conn:
        conn.execute(text("UPDATE events SET status = 'received' WHERE event_id = 'evt-2'"))
    assert processor.process(third).outcome is Outcome.HANDED_OFF_AGAIN
    assert inbox_rows(db)["evt-2"][1] == "dispatched"
    assert [q.id for q in queued(small)] == [handoff_task_id("conversation", "evt-2")] * 2
    # Done is final: never handed off again.
    with db.begin() as conn:
        conn.execute(text("UPDATE events SET status = 'done' WHERE event_id = 'evt-2'"))
    assert processor.process(third).outcome is Outcome.DUPLICATE
    assert len(queued(small)) == 2


def test_the_same_id_with_another_payload_is_dead_lettered(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    original, conflicting = records_of(
        small,
        small.topic_conversation_new,
        [("t", conversation("evt-3")), ("t", conversation("evt-3", "Another topic"))],
    )
    assert processor.process(original).outcome is Outcome.HANDED_OFF
    result = processor.process(conflicting)
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTERED, "conflicting_duplicate")
    (letter,) = read_topic(small, small.topic_conversation_dlq, at_least=1)
    assert (letter.key, letter.value) == (conflicting.key, conflicting.value)
    headers = dict(letter.headers)
    assert headers["h"] == b"v"  # the original headers are kept
    assert headers["x-dlq-reason"] == b"conflicting_duplicate"
    assert headers["x-error-class"] == b"ConflictingDuplicate"
    assert headers["x-event-id"] == b"evt-3"
    assert headers["x-original-topic"] == small.topic_conversation_new.encode()
    assert headers["x-original-partition"] == str(conflicting.partition).encode()
    assert headers["x-original-offset"] == str(conflicting.offset).encode()
    assert inbox_rows(db)["evt-3"][1] == "dispatched"  # the original is untouched
    assert len(queued(small)) == 1


POISON: list[tuple[str, Any, str, str]] = [
    # (name, value, x-dlq-reason, x-event-id)
    ("invalid JSON", b'{"event_id": "p-1", ', "invalid_json", ""),
    ("not an object", b"[1, 2]", "invalid_json", ""),
    ("undecodable bytes", b"\xff\xfe{}", "undecodable", ""),
    ("schema-invalid", {"event_id": "p-2", "topic": {"title": ""}}, "schema_invalid", "p-2"),
    ("too large", {"event_id": "p-3", "topic": "x" * 2_000}, "too_large", ""),
    ("tombstone", None, "tombstone", ""),
    (
        "unknown schema_version",
        {"event_id": "p-4", "topic": "t", "schema_version": 9},
        "unsupported_version",
        "p-4",
    ),
    # Postgres JSONB cannot store NUL: left to the inbox it would look like an outage for ever.
    (
        "NUL in a string",
        {"event_id": "p-5", "topic": "t", "metadata": {"k": "a\x00b"}},
        "schema_invalid",
        "p-5",
    ),
]


def test_every_poison_class_is_dead_lettered_with_its_reason(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    topic = small.topic_conversation_new
    records = records_of(small, topic, [("poison", value) for _, value, _, _ in POISON])
    for (name, _, reason, _), record in zip(POISON, records, strict=True):
        result = processor.process(record)
        assert (result.outcome, result.reason) == (Outcome.DEAD_LETTERED, reason), name
    letters = read_topic(small, small.topic_conversation_dlq, at_least=len(POISON))
    assert len(letters) == len(POISON)
    by_offset = {int(dict(r.headers)["x-original-offset"]): r for r in letters}
    for (name, _, reason, event_id), record in zip(POISON, records, strict=True):
        letter = by_offset[record.offset]
        headers = dict(letter.headers)
        assert set(headers) == DLQ_HEADERS | {"h"}, name
        assert headers["x-dlq-reason"] == reason.encode(), name
        assert headers["x-event-id"] == event_id.encode(), name
        assert headers["x-original-topic"] == topic.encode(), name
        assert headers["x-attempts"] == b"1" and headers["x-replay-count"] == b"0", name
        assert letter.key == b"poison", name
        assert letter.value == record.value, name
    assert inbox_rows(db) == {}
    assert queued(small) == []


@pytest.mark.parametrize(
    ("value", "error_class", "reason"),
    [
        # Would make the payload hash raise UnicodeEncodeError: an unpaired surrogate.
        (
            b'{"event_id": "p-6", "topic": "t", "metadata": {"k": "\\udfff"}}',
            "UndecodableEvent",
            "undecodable",
        ),
        # Would make json.loads raise RecursionError: JSON nested this deep.
        (
            b'{"event_id": "p-7", "topic": "t", "metadata": {"k": '
            + b"[" * 5_000
            + b"]" * 5_000
            + b"}}",
            "InvalidJSON",
            "invalid_json",
        ),
    ],
    ids=["lone surrogate", "nested too deep"],
)
def test_input_that_breaks_the_parser_is_dead_lettered_with_the_codecs_reason(
    bridge_settings: Settings, db: Any, value: bytes, error_class: str, reason: str
) -> None:
    # The codec turns the parser's own exception into its InputError: a dead letter
    # naming what is wrong, never a retry.
    s = bridge_settings
    (record,) = records_of(s, s.topic_conversation_new, [("k", value)])
    producer = make_producer(s)
    app = celery_app(s)
    try:
        result = RecordProcessor(s, Inbox(db), producer, app).process(record)
    finally:
        app.close()
        producer.close()
    assert result.outcome is Outcome.DEAD_LETTERED
    (letter,) = read_topic(s, s.topic_conversation_dlq, at_least=1)
    assert letter.value == value
    headers = dict(letter.headers)
    assert headers["x-dlq-reason"] == reason.encode()
    assert headers["x-error-class"] == error_class.encode()
    assert result.reason == reason


def test_input_text_that_utf8_cannot_carry_is_escaped_in_the_dlq_headers(
    processor: RecordProcessor, small: Settings
) -> None:
    # An event whose id is an unpaired surrogate (not Unicode text: the codec calls it
    # undecodable); the id still goes into x-event-id, escaped.
    raw = b'{"event_id": "\\udfff", "topic": ""}'
    (record,) = records_of(small, small.topic_conversation_new, [("k", raw)])
    assert processor.process(record).reason == "undecodable"
    (letter,) = read_topic(small, small.topic_conversation_dlq, at_least=1)
    assert dict(letter.headers)["x-event-id"] == b"\\udfff"
    assert letter.value == raw


def test_analysis_poison_goes_to_the_analysis_dlq(
    processor: RecordProcessor, small: Settings
) -> None:
    (record,) = records_of(small, small.topic_analysis_tasks, [(None, b"nope")])
    assert processor.process(record).reason == "invalid_json"
    (letter,) = read_topic(small, small.topic_analysis_dlq, at_least=1)
    assert letter.value == b"nope" and letter.key is None
    assert read_topic(small, small.topic_conversation_dlq) == []


def test_a_null_key_tombstone_is_dead_lettered_with_an_empty_value(
    processor: RecordProcessor, small: Settings
) -> None:
    # kafka-python cannot send key=None, value=None; other producers can.  Build one.
    (record,) = records_of(small, small.topic_conversation_new, [(b"k", None)])
    bare = record._replace(key=None, headers=[("n", None)])
    assert processor.process(bare).reason == "tombstone"
    (letter,) = read_topic(small, small.topic_conversation_dlq, at_least=1)
    assert (letter.key, letter.value) == (None, b"")
    assert dict(letter.headers)["n"] == b""


def test_an_unreachable_celery_broker_leaves_the_event_received(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    (record,) = records_of(small, small.topic_conversation_new, [("t", conversation("evt-4"))])
    dead = celery_app(small)
    dead.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    down = RecordProcessor(small, Inbox(db), processor._producer, dead)
    try:
        with pytest.raises(RedisUnavailable, match="Celery broker"):
            down.process(record)
    finally:
        dead.close()
    assert inbox_rows(db)["evt-4"][1] == "received"
    assert queued(small) == []
    # Redelivered once the broker is back: handed off (again, as far as the inbox knows).
    assert processor.process(record).outcome is Outcome.HANDED_OFF_AGAIN
    assert len(queued(small)) == 1


def test_an_unreachable_database_is_an_outage_not_a_dead_letter(
    processor: RecordProcessor, small: Settings, scratch_db_url: str
) -> None:
    (record,) = records_of(small, small.topic_conversation_new, [("t", conversation("evt-5"))])
    engine = make_engine(small, url=scratch_db_url)  # the database does not exist
    try:
        down = RecordProcessor(small, Inbox(engine), processor._producer, processor._app)
        with pytest.raises(DatabaseUnavailable):
            down.process(record)
    finally:
        engine.dispose()
    assert queued(small) == []
    assert read_topic(small, small.topic_conversation_dlq) == []


def test_json_payload_is_stored_as_sent(
    processor: RecordProcessor, small: Settings, db: Any
) -> None:
    event = conversation("evt-6") | {"metadata": {"nested": [1, {"a": None}]}, "min_turns": 2}
    (record,) = records_of(small, small.topic_conversation_new, [("t", event)])
    processor.process(record)
    with db.connect() as conn:
        stored = conn.execute(text("SELECT payload FROM events WHERE event_id = 'evt-6'")).scalar()
    assert stored == json.loads(record.value)
