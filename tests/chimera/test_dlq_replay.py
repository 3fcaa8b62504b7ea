"""Replaying dead letters through the library: real Kafka topics, real Postgres inbox."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import pytest
from kafka import TopicPartition

from chimera.codec import payload_hash
from chimera.errors import NotFound
from chimera.events.deadletters import DeadLetter, dead_letter
from chimera.events.inbox import Inbox, Source
from chimera.events.letters import list_dead_letters
from chimera.events.replay import (
    Action,
    ReplayReport,
    replay,
    replay_group,
)
from chimera.events.replay_plan import Filters
from chimera.kafka.clients import make_consumer, make_producer
from chimera.settings import Settings, to_env
from tests.bridges.conftest import read_topic
from tests.chimera.test_cli import chimera

PARTITIONS = 3


@pytest.fixture
def s(kafka_topics: Settings, db: Any) -> Settings:
    """This test's topics, and a consumer group (hence a replay group) of its own."""
    group = f"dlq-test-{secrets.token_hex(3)}"
    return kafka_topics.model_copy(update={"kafka_consumer_group_id": group})


@pytest.fixture
def inbox(db: Any) -> Inbox:
    return Inbox(db)


def conversation(event_id: str, title: str = "Should cities ban cars?") -> dict[str, Any]:
    return {"event_id": event_id, "topic": title}


def letter(
    settings: Settings,
    event_id: str,
    *,
    reason: str = "llm_permanent",
    replay_count: int = 0,
    payload: dict[str, Any] | None = None,
    headers: tuple[tuple[str, bytes], ...] = (("h", b"v"),),
    original_topic: str | None = "",
) -> DeadLetter:
    """A conversation event's dead letter, as the bridge or a worker writes it."""
    return DeadLetter(
        key=f"key-{event_id}".encode(),
        value=json.dumps(payload or conversation(event_id)).encode(),
        reason=reason,
        error_class="SafetyBlocked",
        error_message="the provider refused",
        original_topic=settings.topic_conversation_new if original_topic == "" else original_topic,
        original_partition=1,
        original_offset=41,
        event_id=event_id,
        attempts=2,
        replay_count=replay_count,
        headers=headers,
    )


def put(settings: Settings, letters: Iterable[DeadLetter], topic: str | None = None) -> None:
    producer = make_producer(settings)
    try:
        dead_letter(producer, topic or settings.topic_conversation_dlq, list(letters))
    finally:
        producer.close()


def record_event(
    inbox: Inbox, event_id: str, status: str, payload: dict[str, Any] | None = None
) -> None:
    """An inbox row in ``status``, its attempts at 1 and an error recorded."""
    payload = payload or conversation(event_id)
    inbox.accept(
        event_id=event_id,
        kind="conversation",
        payload=payload,
        payload_hash=payload_hash(payload),
        source=Source("conversation.new", 1, 41),
    )
    inbox.mark(event_id, "dispatched", count_attempt=True)
    if status != "dispatched":
        inbox.mark(event_id, status, error="SafetyBlocked: the provider refused")  # type: ignore[arg-type]


def run(settings: Settings, db: Any, **options: Any) -> ReplayReport:
    return replay(settings, settings.topic_conversation_dlq, engine=db, **options)


def replayed(settings: Settings, at_least: int = 0) -> list[Any]:
    return read_topic(settings, settings.topic_conversation_new, at_least=at_least, timeout_s=2)


def committed(settings: Settings) -> dict[int, int | None]:
    consumer = make_consumer(settings, group_id=replay_group(settings))
    try:
        topic = settings.topic_conversation_dlq
        return {
            p: consumer.committed(TopicPartition(topic, p), timeout_ms=10_000)
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def actions(report: ReplayReport) -> dict[str, str]:
    return {str(o.letter.event_id): o.action.value for o in report.outcomes}


def test_list_reads_every_record_and_its_headers_without_a_group(s: Settings) -> None:
    put(s, [letter(s, "evt-1"), letter(s, "evt-2", reason="schema_invalid")])
    scan = list_dead_letters(s, s.topic_conversation_dlq)
    by_id = {r.event_id: r for r in scan.records}
    assert set(by_id) == {"evt-1", "evt-2"}
    first = by_id["evt-1"]
    assert (first.reason, first.error_class, first.attempts, first.replay_count) == (
        "llm_permanent",
        "SafetyBlocked",
        2,
        0,
    )
    assert first.origin == f"{s.topic_conversation_new}[1]@41"
    assert ("h", b"v") in first.headers
    assert by_id["evt-2"].reason == "schema_invalid"
    assert sum(scan.ends.values()) == 2
    assert committed(s) == dict.fromkeys(range(PARTITIONS))  # listing commits nothing


def test_replay_republishes_the_original_record_and_resets_the_inbox(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    record_event(inbox, "evt-1", "dead_lettered")
    headers = (("h", b"v"), ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b-01"))
    put(s, [letter(s, "evt-1", replay_count=1, headers=headers)])

    report = run(s, db)

    assert actions(report) == {"evt-1": "replayed"}
    assert report.outcomes[0].replay_count == 2
    assert report.outcomes[0].cells() == (
        "replayed",
        "evt-1",
        f"{s.topic_conversation_dlq}[{report.outcomes[0].letter.partition}]@0",
        f"-> {s.topic_conversation_new} (replay 2 of 3); inbox reset",
    )
    (record,) = replayed(s, at_least=1)
    assert record.key == b"key-evt-1"
    assert json.loads(record.value) == conversation("evt-1")
    assert record.headers == [*headers, ("x-replay-count", b"2")]
    event = inbox.get("evt-1")
    assert event is not None
    assert (event.status, event.attempts) == ("received", 1)
    assert event.last_error == "SafetyBlocked: the provider refused"
    assert sum(o or 0 for o in committed(s).values()) == 1


def test_a_second_replay_finds_nothing_new(s: Settings, db: Any, inbox: Inbox) -> None:
    for event_id in ("evt-1", "evt-2"):
        record_event(inbox, event_id, "dead_lettered")
    put(s, [letter(s, "evt-1"), letter(s, "evt-2")])
    assert run(s, db).replayed == 2
    again = run(s, db)
    assert (again.outcomes, again.replayed) == ([], 0)
    # Asked for by id, the old record is found, but the event is in flight again.
    by_id = run(s, db, filters=Filters(event_id="evt-1"))
    assert actions(by_id) == {"evt-1": "skipped"}
    assert "the event is received (in flight)" in by_id.outcomes[0].detail
    assert len(replayed(s, at_least=2)) == 2


def test_done_in_flight_and_conflicting_events_are_neither_replayed_nor_reset(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    record_event(inbox, "evt-done", "done")
    record_event(inbox, "evt-busy", "dispatched")
    record_event(inbox, "evt-other", "dead_lettered", conversation("evt-other", "First title"))
    put(
        s,
        [
            letter(s, "evt-done"),
            letter(s, "evt-busy"),
            letter(s, "evt-other", reason="conflicting_duplicate"),
        ],
    )

    report = run(s, db)

    assert actions(report) == dict.fromkeys(("evt-done", "evt-busy", "evt-other"), "skipped")
    why = {o.letter.event_id: o.detail for o in report.outcomes}
    assert why["evt-done"] == "the event is done"
    assert "dispatched (in flight)" in why["evt-busy"]
    assert "recorded with another payload" in why["evt-other"]
    assert replayed(s) == []
    statuses = {e: getattr(inbox.get(e), "status", None) for e in why}
    assert statuses == {
        "evt-done": "done",
        "evt-busy": "dispatched",
        "evt-other": "dead_lettered",
    }
    # Refused records are dealt with: the next run does not look at them again.
    assert run(s, db).outcomes == []


def test_a_record_at_the_replay_limit_is_refused(s: Settings, db: Any, inbox: Inbox) -> None:
    record_event(inbox, "evt-1", "dead_lettered")
    put(s, [letter(s, "evt-1", replay_count=s.dlq_max_replays)])
    report = run(s, db)
    assert actions(report) == {"evt-1": "skipped"}
    assert "replayed 3 times already; the limit is 3" in report.outcomes[0].detail
    assert replayed(s) == []
    assert getattr(inbox.get("evt-1"), "status", None) == "dead_lettered"


def test_a_dry_run_changes_nothing(s: Settings, db: Any, inbox: Inbox) -> None:
    record_event(inbox, "evt-1", "dead_lettered")
    put(s, [letter(s, "evt-1")])

    dry = run(s, db, dry_run=True)

    assert actions(dry) == {"evt-1": "would replay"}
    assert dry.summary() == (
        f"{s.topic_conversation_dlq}: would replay 1, skip 0 "
        "(dry run: nothing was published, reset or committed)"
    )
    assert replayed(s) == []
    assert getattr(inbox.get("evt-1"), "status", None) == "dead_lettered"
    assert committed(s) == dict.fromkeys(range(PARTITIONS))
    assert actions(run(s, db)) == {"evt-1": "replayed"}  # still there for a real run


def test_filters_select_by_event_id_and_reason(s: Settings, db: Any, inbox: Inbox) -> None:
    for event_id in ("evt-a", "evt-b", "evt-c"):
        record_event(inbox, event_id, "dead_lettered")
    put(
        s,
        [
            letter(s, "evt-a"),
            letter(s, "evt-b", reason="retries_exhausted"),
            letter(s, "evt-c"),
        ],
    )

    assert actions(run(s, db, filters=Filters(event_id="evt-b"))) == {"evt-b": "replayed"}
    by_reason = run(s, db, filters=Filters(reason="llm_permanent"))
    assert actions(by_reason) == {"evt-a": "replayed", "evt-c": "replayed"}
    # The unfiltered run sees all three (the filtered runs may not commit past
    # records they did not look at), and each is in flight by now.
    rest = run(s, db)
    assert set(actions(rest).values()) <= {"skipped"}
    assert sorted(json.loads(r.value)["event_id"] for r in replayed(s, 3)) == [
        "evt-a",
        "evt-b",
        "evt-c",
    ]


def test_an_old_committed_record_is_still_found_by_its_event_id(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    record_event(inbox, "evt-1", "dispatched")
    put(s, [letter(s, "evt-1")])
    assert actions(run(s, db)) == {"evt-1": "skipped"}  # in flight; committed past
    inbox.mark("evt-1", "dead_lettered")  # it failed later
    assert run(s, db).outcomes == []
    assert actions(run(s, db, filters=Filters(event_id="evt-1"))) == {"evt-1": "replayed"}
    assert getattr(inbox.get("evt-1"), "status", None) == "received"


def test_the_limit_bounds_a_run_and_the_next_run_goes_on(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    ids = [f"evt-{n}" for n in range(3)]
    for event_id in ids:
        record_event(inbox, event_id, "dead_lettered")
    put(s, [letter(s, event_id) for event_id in ids])

    first = run(s, db, limit=2)
    assert (first.replayed, first.left) == (2, 1)
    assert "1 more left by the limit" in first.summary()
    second = run(s, db)
    assert [o.action for o in second.outcomes if o.action is Action.REPLAYED] == [Action.REPLAYED]
    assert len(replayed(s, 3)) == 3


def test_an_event_that_never_reached_the_inbox_is_replayed_as_it_is(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    """Bad input dead-lettered by the bridge has no inbox row; an analysis letter with
    no original topic goes to the analysis input topic."""
    bad = DeadLetter(
        key=b"ctx-1",
        value=b"{not json",
        reason="invalid_json",
        error_class="InvalidJSON",
        error_message="not JSON",
    )
    put(s, [bad], topic=s.topic_analysis_dlq)
    report = replay(s, s.topic_analysis_dlq, engine=db)
    assert [o.action for o in report.outcomes] == [Action.REPLAYED]
    (record,) = read_topic(s, s.topic_analysis_tasks, at_least=1)
    assert (record.key, record.value) == (b"ctx-1", b"{not json")
    assert record.headers == [("x-replay-count", b"1")]


# --- routes: a dead letter goes to its topic's one input topic, whatever it says -----------


def sentinel_then_read(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic``, read until a sentinel published now is among them, so
    an empty answer is not just a read that ended too soon; the sentinel left out."""
    producer = make_producer(settings)
    try:
        producer.send(topic, key=b"sentinel", value=b"{}").get(timeout=10)
    finally:
        producer.close()
    records = read_topic(settings, topic, at_least=1)
    assert any(r.key == b"sentinel" for r in records)
    return [r for r in records if r.key != b"sentinel"]


def test_a_forged_dead_letter_is_refused_and_the_genuine_ones_still_go(
    s: Settings, db: Any, inbox: Inbox
) -> None:
    """Whoever can write to the DLQ writes x-original-topic too: a record naming an output
    topic, or the other kind's input, is refused and reported, never published."""
    record_event(inbox, "evt-1", "dead_lettered")
    put(
        s,
        [
            letter(s, "evt-1"),
            letter(s, "evt-out", original_topic=s.topic_conversation_completed),
            letter(s, "evt-ana", original_topic=s.topic_analysis_tasks),
        ],
    )
    expected = {"evt-1": "replayed", "evt-out": "refused", "evt-ana": "refused"}

    dry = run(s, db, dry_run=True)
    assert actions(dry) == expected | {"evt-1": "would replay"}
    assert dry.summary().startswith(
        f"{s.topic_conversation_dlq}: would replay 1, skip 0, refuse 2 claiming another"
    )
    report = run(s, db)

    assert actions(report) == expected
    assert report.summary() == (
        f"{s.topic_conversation_dlq}: replayed 1, skipped 0, refused 2 claiming another "
        "original topic"
    )
    refused = {o.letter.event_id: o.detail for o in report.outcomes if o.action is Action.REFUSED}
    assert (
        f"{s.topic_conversation_completed!r} is not {s.topic_conversation_new}"
        in refused["evt-out"]
    )
    assert f"{s.topic_analysis_tasks!r} is not {s.topic_conversation_new}" in refused["evt-ana"]
    (genuine,) = replayed(s, at_least=1)
    assert json.loads(genuine.value)["event_id"] == "evt-1"
    assert sentinel_then_read(s, s.topic_conversation_completed) == []
    assert sentinel_then_read(s, s.topic_analysis_tasks) == []
    # Dealt with: the next run does not offer them again.
    assert run(s, db).outcomes == []


def test_replaying_a_topic_that_is_not_a_dead_letter_topic_is_refused(s: Settings, db: Any) -> None:
    put(s, [letter(s, "evt-1")], topic=s.topic_conversation_completed)
    for topic in (s.topic_conversation_completed, s.topic_conversation_new):
        with pytest.raises(NotFound, match="is not a dead-letter topic"):
            replay(s, topic, engine=db)
    assert sentinel_then_read(s, s.topic_conversation_new) == []


# --- printing: what a DLQ writer chose reaches the terminal escaped -----------------------------

ESC_REASON = "\x1b]0;owned\x07\x1b[2J"


def test_list_and_replay_print_header_text_escaped(s: Settings, db: Any) -> None:
    """A record written straight to the DLQ with escape sequences in its headers: the
    table, the JSON and the replay's lines show them as text, never as control bytes."""
    producer = make_producer(s)
    try:
        headers = [
            ("x-dlq-reason", ESC_REASON.encode()),
            ("x-event-id", b"evt-\x1b[8mhidden"),
            ("x-error-class", "Bad\u202eClass".encode()),
            ("x-original-topic", f"{s.topic_conversation_new}\x1b[1A".encode()),
        ]
        producer.send(s.topic_conversation_dlq, key=b"k", value=b"{}", headers=headers).get(10)
    finally:
        producer.close()
    env = to_env(s)

    table = chimera("dlq", "list", "--topic", "conversation.dlq", env=env)
    assert table.returncode == 0, table.stderr
    assert "\\x1b]0;owned\\x07\\x1b[2J" in table.stdout
    assert "evt-\\x1b[8mhidden" in table.stdout and "Bad\\u202eClass" in table.stdout
    as_json = chimera("dlq", "list", "--topic", "conversation.dlq", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["records"][0]["reason"] == ESC_REASON
    replayed_ = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert replayed_.returncode == 0, replayed_.stderr
    assert replayed_.stdout.splitlines()[0].startswith("refused  evt-\\x1b[8mhidden")
    for out in (table, as_json, replayed_):
        assert not any(c in out.stdout + out.stderr for c in ("\x1b", "\x07", "\u202e"))
