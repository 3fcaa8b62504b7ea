"""Replayed dead letters through a real bridge: handed off once more, poison capped."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.errors import LLMRefused, SafetyBlocked
from chimera.events.deadletters import DeadLetter, dead_letter
from chimera.events.inbox import EventStatus, Inbox
from chimera.kafka.clients import make_producer
from chimera.settings import Settings, to_env
from tests.bridges.conftest import (  # noqa: F401 - fixtures
    CELERYCONFIG_DEPRECATION,
    _keep_current_celery_app,
    bridge_settings,
    conversation,
    produce,
    queued,
    read_topic,
    run_bridge,
)
from tests.chimera.test_cli import chimera

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)


def fail_like_a_worker(settings: Settings, inbox: Inbox, event_id: str) -> None:
    """What the conversation engine does when it gives up: the inbox row is
    dead-lettered and the event's record goes to the DLQ."""
    recorded = inbox.get(event_id)
    assert recorded is not None
    inbox.mark(event_id, EventStatus.DEAD_LETTERED, error="SafetyBlocked: refused")
    producer = make_producer(settings)
    try:
        letter = DeadLetter.of_event(recorded, LLMRefused(SafetyBlocked("refused")))
        dead_letter(producer, settings.topic_conversation_dlq, [letter])
    finally:
        producer.close()


def test_a_replayed_conversation_event_is_handed_off_once_more(
    bridge_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Any,
    run_bridge: Any,  # noqa: F811
) -> None:
    s, inbox = bridge_settings, Inbox(db)
    env = to_env(s)
    produce(s, s.topic_conversation_new, [("t-1", conversation("evt-1"))])
    bridge = run_bridge(s)
    bridge.wait_for(lambda: bridge.stats.handed_off == 1, what="the first hand-off")
    fail_like_a_worker(s, inbox, "evt-1")

    result = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["replayed", "evt-1"]
    bridge.wait_for(lambda: bridge.stats.handed_off == 2, what="the replayed event's hand-off")
    assert bridge.stats.handed_off_again == 1
    assert [q.args for q in queued(s)] == [["evt-1"], ["evt-1"]]
    assert getattr(inbox.get("evt-1"), "status", None) == "dispatched"

    # Again: nothing new to replay, and asked for by id, the event is in flight.
    again = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert again.stdout.splitlines() == [f"{s.topic_conversation_dlq}: replayed 0, skipped 0"]
    by_id = chimera("dlq", "replay", "--topic", "conversation.dlq", "--event-id", "evt-1", env=env)
    assert "the event is dispatched (in flight)" in by_id.stdout
    assert len(read_topic(s, s.topic_conversation_new, at_least=2)) == 2
    stats = bridge.stop()
    assert (stats.consumed, stats.handed_off, stats.dead_lettered.total()) == (2, 2, 0)
    assert len(queued(s)) == 2


def test_a_poison_record_comes_back_from_its_replay_and_the_cap_stops_it(
    bridge_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Any,
    run_bridge: Any,  # noqa: F811
) -> None:
    s = bridge_settings.model_copy(update={"dlq_max_replays": 1})
    env = to_env(s)
    produce(s, s.topic_conversation_new, [("t-9", {"event_id": "evt-bad", "min_turns": 3})])
    bridge = run_bridge(s)
    dead = bridge.stats.dead_lettered
    bridge.wait_for(lambda: dead["schema_invalid"] == 1, what="the dead letter")

    listed = chimera("dlq", "list", "--topic", "conversation.dlq", env=env)
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    assert row[:4] == ["evt-bad", "schema_invalid", "SchemaInvalid", "1"]
    assert row[6].startswith(f"{s.topic_conversation_new}[")

    first = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert "(replay 1 of 1)" in first.stdout, first.stderr
    bridge.wait_for(lambda: dead["schema_invalid"] == 2, what="the replay's dead letter")
    second = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert "replayed 1 time already; the limit is 1" in second.stdout, second.stderr
    assert second.stdout.splitlines()[-1] == f"{s.topic_conversation_dlq}: replayed 0, skipped 1"

    original, replayed = sorted(
        read_topic(s, s.topic_conversation_new, at_least=2), key=lambda r: r.timestamp
    )
    assert (replayed.key, replayed.value) == (original.key, original.value)
    assert replayed.headers == [("h", b"v"), ("x-replay-count", b"1")]
    assert bridge.stop().consumed == 2


def test_a_workers_dead_letter_keeps_the_record_and_carries_its_replay_count(
    bridge_settings: Settings,  # noqa: F811 - the fixture imported above
    db: Any,
    run_bridge: Any,  # noqa: F811
) -> None:
    """A dead letter written by a worker (not the bridge) is the record again: its key,
    its headers and, once replayed, the replay's ``x-replay-count``; so the replay cap
    holds however often the event fails in a worker."""
    s, inbox = bridge_settings.model_copy(update={"dlq_max_replays": 1}), Inbox(db)
    env = to_env(s)
    produce(s, s.topic_conversation_new, [("t-1", conversation("evt-1"))])
    bridge = run_bridge(s)
    bridge.wait_for(lambda: bridge.stats.handed_off == 1, what="the first hand-off")

    fail_like_a_worker(s, inbox, "evt-1")
    (first,) = read_topic(s, s.topic_conversation_dlq, at_least=1)
    headers = dict(first.headers)
    assert first.key == b"t-1" and headers["h"] == b"v"
    assert headers["x-replay-count"] == b"0" and headers["x-dlq-reason"] == b"llm_permanent"
    assert headers["x-error-class"] == b"SafetyBlocked"

    replayed = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert "(replay 1 of 1)" in replayed.stdout, replayed.stderr
    bridge.wait_for(lambda: bridge.stats.handed_off == 2, what="the replayed event's hand-off")
    fail_like_a_worker(s, inbox, "evt-1")  # it fails again

    letters = read_topic(s, s.topic_conversation_dlq, at_least=2)
    second = max(letters, key=lambda r: r.timestamp)
    headers = dict(second.headers)
    assert second.key == b"t-1" and headers["h"] == b"v"
    assert headers["x-replay-count"] == b"1"
    again = chimera("dlq", "replay", "--topic", "conversation.dlq", env=env)
    assert "replayed 1 time already; the limit is 1" in again.stdout, again.stderr
    bridge.stop()
