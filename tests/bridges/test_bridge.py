"""The bridge's loop in a thread: real consumer group, Postgres, Redis and Celery broker."""

from __future__ import annotations

import time
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text

from chimera import heartbeat
from chimera.db import admin
from chimera.events.ids import handoff_task_id
from chimera.redis_client import make_redis
from chimera.settings import Settings
from tests.bridges.conftest import (
    analysis,
    committed,
    conversation,
    end_offsets,
    produce,
    queued,
    read_topic,
)


def statuses(db: Any) -> dict[str, str]:
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT event_id, status FROM events")).all())


def test_a_stream_is_handed_off_once_deduplicated_and_its_poison_dead_lettered(
    bridge_settings: Settings, db: Any, run_bridge: Any
) -> None:
    s = bridge_settings
    e1 = conversation("evt-1")
    conv = produce(
        s,
        s.topic_conversation_new,
        [
            ("t-1", e1),
            ("t-1", e1),  # duplicates: one row, one hand-off
            ("t-1", e1),
            ("t-1", conversation("evt-1", "Another title")),  # same id, other payload
            ("t-1", b"{not json"),  # poison ...
            ("t-1", None),
            ("t-1", conversation("evt-2")),  # ... and the bridge carries on after it
        ],
    )
    ana = produce(s, s.topic_analysis_tasks, [("ctx", analysis("evt-a")), ("ctx", b"\xff")])
    bridge = run_bridge(s)
    bridge.wait_for(lambda: bridge.stats.consumed == 9, what="every record")
    stats = bridge.stop()

    assert statuses(db) == {"evt-1": "dispatched", "evt-2": "dispatched", "evt-a": "dispatched"}
    assert sorted((q.task, q.id, tuple(q.args)) for q in queued(s)) == sorted(
        [
            ("chimera.conversation.start", handoff_task_id("conversation", "evt-1"), ("evt-1",)),
            ("chimera.conversation.start", handoff_task_id("conversation", "evt-2"), ("evt-2",)),
            ("chimera.analysis.start", handoff_task_id("analysis", "evt-a"), ("evt-a",)),
        ]
    )
    reasons = [
        dict(r.headers)["x-dlq-reason"] for r in read_topic(s, s.topic_conversation_dlq, at_least=3)
    ]
    assert sorted(reasons) == [b"conflicting_duplicate", b"invalid_json", b"tombstone"]
    (ana_letter,) = read_topic(s, s.topic_analysis_dlq, at_least=1)
    assert dict(ana_letter.headers)["x-dlq-reason"] == b"undecodable"
    assert (stats.handed_off, stats.duplicates, stats.errors) == (3, 2, 0)
    assert dict(stats.dead_lettered) == {
        "conflicting_duplicate": 1,
        "invalid_json": 1,
        "tombstone": 1,
        "undecodable": 1,
    }
    # Every offset is committed, read by another member of the group after the stop.
    assert committed(s, s.topic_conversation_new) == end_offsets(conv)
    assert committed(s, s.topic_analysis_tasks) == end_offsets(ana)


def test_postgres_away_holds_intake_then_everything_is_processed_once(
    bridge_settings: Settings, scratch_db_url: str, run_bridge: Any
) -> None:
    # A database that does not exist yet.
    s = bridge_settings.model_copy(update={"database_url": SecretStr(scratch_db_url)})
    meta = produce(
        s, s.topic_conversation_new, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(6)]
    )
    bridge = run_bridge(s)
    bridge.wait_for(lambda: bridge.stats.errors >= 3, what="retries against the missing database")
    assert bridge.bridge.state == "waiting for Postgres"
    assert bridge.stats.consumed == 0
    assert queued(s) == []
    assert read_topic(s, s.topic_conversation_dlq) == []
    assert set(committed(s, s.topic_conversation_new).values()) == {None}

    admin.upgrade(s)  # the database appears, migrated, while the bridge runs
    bridge.wait_for(lambda: bridge.stats.consumed == 6, what="the backlog after recovery")
    stats = bridge.stop()
    assert stats.handed_off == 6 and stats.duplicates == 0 and not stats.dead_lettered
    assert sorted(q.args[0] for q in queued(s)) == [f"evt-{i}" for i in range(6)]
    assert read_topic(s, s.topic_conversation_dlq) == []
    assert committed(s, s.topic_conversation_new) == end_offsets(meta)


def test_backpressure_pauses_above_the_high_water_mark_and_resumes_below_the_low(
    bridge_settings: Settings, db: Any, run_bridge: Any
) -> None:
    s = bridge_settings.model_copy(update={"kafka_max_poll_records": 2})
    produce(s, s.topic_conversation_new, [(f"t-{i}", conversation(f"evt-{i}")) for i in range(20)])
    bridge = run_bridge(s, queue_high_water=5, queue_low_water=2, depth_check_interval_s=0.1)
    bridge.wait_for(lambda: bridge.bridge.backpressure.engaged, what="backpressure")
    time.sleep(0.6)  # paused: nothing more is taken while the queue stays long
    held = bridge.stats.handed_off
    assert 5 < held <= 5 + 2  # at most one poll's records past the mark
    assert len(queued(s)) == held
    state = heartbeat_of(s, bridge)
    assert state["state"] == "paused (backpressure)" and state["paused"]
    assert len(state["assigned"]) == 6  # still a member of the group: nothing revoked

    drain(s, keep=3)  # above the low-water mark: still paused
    time.sleep(0.6)
    assert bridge.stats.handed_off == held and bridge.bridge.backpressure.engaged
    drain(s, keep=2)  # at the low-water mark: intake resumes
    bridge.wait_for(lambda: bridge.stats.handed_off > held, what="intake to resume")

    def worker_catches_up() -> bool:
        drain(s, keep=0)
        return bridge.stats.handed_off == 20

    bridge.wait_for(worker_catches_up, what="the rest of the events")
    stats = bridge.stop()
    assert stats.consumed == 20 and stats.errors == 0


def heartbeat_of(settings: Settings, bridge: Any) -> dict[str, Any]:
    client = make_redis(settings)
    try:
        beats = heartbeat.read(client, settings, "bridge")
    finally:
        client.close()
    (beat,) = [b for b in beats if b.instance == bridge.bridge.instance]
    return beat.info


def drain(settings: Settings, *, keep: int) -> None:
    from tests.bridges.conftest import broker_redis, queue_keys

    client = broker_redis(settings)
    try:
        key = queue_keys(settings)[0]
        while client.llen(key) > keep:
            client.rpop(key)
    finally:
        client.close()


def test_a_second_bridge_joining_rebalances_without_losing_or_repeating_hand_offs(
    bridge_settings: Settings, db: Any, run_bridge: Any, drainer: Any
) -> None:
    s = bridge_settings.model_copy(update={"kafka_max_poll_records": 20})
    n = 600
    events = [(f"t-{i}", conversation(f"evt-{i}")) for i in range(n)]
    meta = produce(s, s.topic_conversation_new, events[:300])
    first = run_bridge(s)
    first.wait_for(lambda: first.stats.consumed >= 50, what="the first bridge to start")
    second = run_bridge(s)
    second.wait_for(lambda: second.bridge.assignment, what="the rebalance")
    assert len(first.bridge.assignment | second.bridge.assignment) == 6
    meta += produce(s, s.topic_conversation_new, events[300:])

    def all_dispatched() -> bool:
        rows = statuses(db)
        return len(rows) == n and set(rows.values()) == {"dispatched"}

    first.wait_for(all_dispatched, what="every event")
    one, two = first.stop(), second.stop()
    assert one.handed_off > 0 and two.handed_off > 0
    assert one.handed_off + two.handed_off == n  # each event handed off by one bridge only
    assert one.consumed + two.consumed - one.duplicates - two.duplicates == n
    messages = drainer.stop()
    assert len(messages) == n and len({m.id for m in messages}) == n
    assert committed(s, s.topic_conversation_new) == end_offsets(meta)
