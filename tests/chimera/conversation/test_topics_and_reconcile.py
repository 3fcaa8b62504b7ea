"""The topic queue and the reconciler against real Redis and Postgres."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.conversation.reconcile import StuckConversations
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.state import ConversationState
from chimera.conversation.store import StateStore
from chimera.conversation.topic_queue import TopicQueue, event_for
from chimera.errors import InvalidJSON
from chimera.events.ids import TOPIC_QUEUE_JOB, conversation_id
from chimera.events.inbox import Inbox
from chimera.events.reconcile import Workflow, reconcile
from chimera.models import ConversationRequest
from chimera.redis_client import make_redis
from tests.helpers import wait_for


@pytest.fixture
def queue_settings(redis_ns: Any) -> Any:
    return redis_ns.model_copy(
        update={
            "topics_queue_key": f"{redis_ns.redis_key_prefix}topics:queue",
            "topics_capacity": 5,
            "topics_batch": 3,
        }
    )


def test_items_become_conversation_events() -> None:
    assert event_for("Should cities ban cars?")["topic"] == {"title": "Should cities ban cars?"}
    obj = event_for(json.dumps({"id": "t-7", "title": "Cars", "max_turns": 6}))
    assert obj == {
        "event_id": "topics:t-7",
        "topic": {"id": "t-7", "title": "Cars"},
        "max_turns": 6,
    }
    assert (
        event_for("Cars")["event_id"]
        == event_for("Cars")["event_id"]
        != event_for("Bikes")["event_id"]
    )
    with pytest.raises(InvalidJSON):
        event_for("{not json")


def test_draining_respects_batch_and_capacity(queue_settings: Any, db: Any) -> None:
    client = make_redis(queue_settings)
    queue = TopicQueue(client, queue_settings)
    queue.push([f"Topic {i}" for i in range(8)] + ["{broken", json.dumps({"id": "x", "title": ""})])
    handed: list[str] = []
    inbox = Inbox(db)

    first = queue.drain(inbox, handed.append, running=0)
    assert first.started == 3 and len(handed) == 3  # the batch
    second = queue.drain(inbox, handed.append, running=4)
    assert second.started == 1  # capacity 5, 4 running
    full = queue.drain(inbox, handed.append, running=5)
    assert full.started == 0 and full.skipped_for_capacity
    rest = [queue.drain(inbox, handed.append, running=0) for _ in range(3)]
    assert sum(r.started for r in rest) == 4
    assert sum(len(r.dead_lettered) for r in rest) == 2  # the broken JSON and the empty title
    assert queue.length() == 0 and client.llen(queue.processing_key) == 0
    assert len(set(handed)) == 8
    assert all(inbox.get(e).status == "dispatched" for e in handed)  # type: ignore[union-attr]


def dead_letters(client: Any, queue: TopicQueue) -> list[dict[str, Any]]:
    return [json.loads(e) for e in client.lrange(queue.dead_key, 0, -1)]


#: Items no drain can make a conversation of, by the reason they are dead-lettered with.
#: Deep enough for the JSON parser's RecursionError, small enough for the item limit.
NESTED = '{"title": "Deep", "metadata": {"x": ' + "[" * 30_000 + "]" * 30_000 + "}}"
POISON: dict[str, bytes] = {
    "invalid_json": b'{"title": "Cars", ',
    "too_large": json.dumps({"title": "Big", "metadata": {"pad": "x" * 70_000}}).encode(),
    "undecodable": b"Caf\xe9 culture?",
    "schema_invalid": b"Nul\x00byte",
}


def test_unreadable_items_are_dead_lettered_and_the_batch_goes_on(
    queue_settings: Any, db: Any
) -> None:
    """Deep nesting (a RecursionError in the JSON parser), an oversize item, broken JSON,
    bytes that are not UTF-8 and a NUL among good topics: each bad one is moved to the
    dead letters with its reason, the good ones start, and nothing stays behind."""
    settings = queue_settings.model_copy(update={"topics_batch": 20, "topics_capacity": 50})
    client = make_redis(settings)
    queue = TopicQueue(client, settings)
    client.rpush(queue.key, "Good one", NESTED, *POISON.values(), "Good two")
    handed: list[str] = []
    inbox = Inbox(db)

    report = queue.drain(inbox, handed.append, running=0)

    assert report.started == 2 and handed == [
        event_for(t)["event_id"] for t in ("Good one", "Good two")
    ]
    assert client.llen(queue.processing_key) == 0 and queue.length() == 0
    dead = dead_letters(client, queue)
    assert [e["reason"] for e in reversed(dead)] == ["invalid_json", *POISON]  # newest first
    nested, *_ = reversed(dead)
    assert "nested too deeply" in nested["error"] and nested["bytes"] == len(NESTED)
    assert len(nested["item"]) < 300 and nested["item"].startswith('{"title": "Deep"')
    by_reason = {e["reason"]: e for e in dead}
    assert "limit is 65536" in by_reason["too_large"]["error"]
    assert by_reason["undecodable"]["item"] == "Caf\\xe9 culture?"
    assert "NUL" in by_reason["schema_invalid"]["error"]
    assert all(e["at"].endswith("Z") and e["error_class"] for e in dead)
    assert [inbox.get(e).status for e in handed] == ["dispatched", "dispatched"]  # type: ignore[union-attr]
    # The next drain has nothing to read again.
    again = queue.drain(inbox, handed.append, running=0)
    assert (again.started, again.duplicates, again.dead_lettered) == (0, 0, [])
    assert len(dead_letters(client, queue)) == len(dead)


def test_a_poison_item_left_in_processing_is_dead_lettered_not_retried(
    queue_settings: Any, db: Any
) -> None:
    """An item a drain died on (left in the processing list) is read first by every later
    drain: unreadable, it must leave, or the queue would stop for good."""
    client = make_redis(queue_settings)
    queue = TopicQueue(client, queue_settings)
    client.rpush(queue.processing_key, NESTED, b"\xff\xfe")
    queue.push(["Fresh topic"])
    handed: list[str] = []
    report = queue.drain(Inbox(db), handed.append, running=0)
    assert handed == [event_for("Fresh topic")["event_id"]]
    assert [r.split(":")[0] for r in report.dead_lettered] == ["invalid_json", "undecodable"]
    assert client.llen(queue.processing_key) == 0


def test_the_dead_letters_are_capped_newest_kept(queue_settings: Any, db: Any) -> None:
    settings = queue_settings.model_copy(update={"topics_dead_max": 3, "topics_batch": 10})
    client = make_redis(settings)
    queue = TopicQueue(client, settings)
    queue.push([f'{{"title": "broken {n}"' for n in range(5)])
    queue.drain(Inbox(db), lambda e: None, running=0)
    assert [e["item"] for e in dead_letters(client, queue)] == [
        f'{{"title": "broken {n}"' for n in (4, 3, 2)
    ]
    total, shown = queue.dead_letters(limit=2)
    assert total == 3 and [e["item"] for e in shown] == [
        '{"title": "broken 4"',
        '{"title": "broken 3"',
    ]
    assert queue.clear_dead() == 3 and queue.dead_letters() == (0, [])


def test_an_id_reused_for_another_topic_is_dead_lettered(queue_settings: Any, db: Any) -> None:
    client = make_redis(queue_settings)
    queue = TopicQueue(client, queue_settings)
    queue.push(
        [json.dumps({"id": "t-1", "title": "Cars"}), json.dumps({"id": "t-1", "title": "Bikes"})]
    )
    report = queue.drain(Inbox(db), lambda e: None, running=0)
    assert report.started == 1
    (dead,) = dead_letters(client, queue)
    assert dead["reason"] == "conflicting_duplicate" and "Bikes" in dead["item"]


def test_an_item_left_in_processing_is_finished_next_time(queue_settings: Any, db: Any) -> None:
    client = make_redis(queue_settings)
    queue = TopicQueue(client, queue_settings)
    client.rpush(queue.processing_key, "Orphaned topic")  # a drain died after moving it
    handed: list[str] = []
    report = queue.drain(Inbox(db), handed.append, running=0)
    assert report.started == 1 and handed == [event_for("Orphaned topic")["event_id"]]
    assert client.llen(queue.processing_key) == 0


def test_a_topics_extra_fields_become_its_conversations_metadata(
    queue_settings: Any, db: Any
) -> None:
    item = {"title": "Cars", "source": "feed-3", "tags": ["urban"], "metadata": {"source": "x"}}
    event = event_for(json.dumps(item))
    assert event["topic"] == {"title": "Cars"}
    assert event["metadata"] == {"source": "x", "tags": ["urban"]}  # metadata's own keys win
    # The extras are part of the topic's identity: another source is another event.
    assert event["event_id"] != event_for(json.dumps(item | {"source": "feed-4"}))["event_id"]

    settings = queue_settings.model_copy(update={"max_output_metadata_bytes": 300})
    client = make_redis(settings)
    queue = TopicQueue(client, settings)
    queue.push([json.dumps({"id": "t-m", "title": "Cars", "source": "feed-3", "rank": 2})])
    queue.push([json.dumps({"id": "t-big", "title": "Bikes", "notes": "n" * 400})])
    handed: list[str] = []
    inbox = Inbox(db)
    report = queue.drain(inbox, handed.append, running=0)

    assert handed == ["topics:t-m"]
    stored = inbox.get("topics:t-m")
    assert stored is not None
    request = ConversationRequest.model_validate(stored.payload)
    assert request.metadata == {"source": "feed-3", "rank": 2, "job_id": TOPIC_QUEUE_JOB}
    assert request.job_id == TOPIC_QUEUE_JOB
    assert request.topic.model_dump(exclude_none=True) == {"id": "t-m", "title": "Cars"}
    # Extras past the metadata bound are refused, as an event's metadata is.
    (dead,) = dead_letters(client, queue)
    assert dead["reason"] == "schema_invalid" and "metadata" in dead["error"]
    assert "at most 300 bytes" in dead["error"] and len(report.dead_lettered) == 1


def test_a_topic_pushed_twice_is_one_conversation(queue_settings: Any, db: Any) -> None:
    queue = TopicQueue(make_redis(queue_settings), queue_settings)
    queue.push(["Same topic", "Same topic"])
    handed: list[str] = []
    report = queue.drain(Inbox(db), handed.append, running=0)
    assert (report.started, report.duplicates, len(handed)) == (1, 1, 1)


def stuck_event(db: Any, event_id: str) -> None:
    payload = {"event_id": event_id, "topic": "Cars?"}
    Inbox(db).accept(
        event_id=event_id, kind="conversation", payload=payload, payload_hash=payload_hash(payload)
    )
    with db.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text("UPDATE events SET updated_at = now() - interval '1 hour' WHERE event_id = :e"),
            {"e": event_id},
        )


def test_the_reconciler_redrives_lost_work_and_repairs_the_inbox(redis_ns: Any, db: Any) -> None:
    settings = redis_ns.model_copy(update={"reconcile_after_s": 60.0, "reconcile_max_attempts": 2})
    store, repo, inbox = (
        StateStore(make_redis(settings), settings),
        ConversationRepository(db),
        Inbox(db),
    )
    for e in ("lost", "stalled", "busy", "finished", "hopeless"):
        stuck_event(db, e)
    # stalled: state left, no progress for long; busy: state updated just now
    for e, age in (("stalled", 3_600), ("busy", 0)):
        state = ConversationState.start(
            conversation_id(e),
            ConversationRequest.model_validate({"event_id": e, "topic": "Cars?"}),
            300,
        )
        store.create(state)
        lease = store.acquire(state.conversation_id)
        store.save(state, lease)
        store.release(lease)  # the chain was lost between turns, not inside one
        if age:
            raw = state.model_copy(update={"updated_at": time.time() - age})
            store._redis.set(store._key(state.conversation_id, "state"), raw.model_dump_json())
    finished = ConversationState.start(
        conversation_id("finished"),
        ConversationRequest.model_validate({"event_id": "finished", "topic": "Cars?"}),
        300,
    )
    repo.complete(finished, score=0.9, breakdown={})
    from sqlalchemy import text

    with db.begin() as conn:  # complete() marked it done; put it back to "stuck"
        conn.execute(
            text(
                "UPDATE events SET status = 'dispatched', updated_at = now() - interval '1 hour' WHERE event_id = 'finished'"
            )
        )
        conn.execute(text("UPDATE events SET attempts = 2 WHERE event_id = 'hopeless'"))

    redriven: list[tuple[str, bool]] = []
    given_up: list[str] = []
    workflow = Workflow(
        "conversation",
        StuckConversations(settings, store=store, repo=repo),
        redrive=lambda e, resume: redriven.append((e, resume)),
        give_up=lambda e, why: given_up.append(e),
    )
    report = reconcile(settings, inbox, [workflow])
    assert sorted(redriven) == [("lost", False), ("stalled", True)]
    assert report.progressing == 1
    assert report.repaired == ["finished"] and inbox.get("finished").status == "done"  # type: ignore[union-attr]
    assert given_up == ["hopeless"]
    assert inbox.get("lost").attempts == 1  # type: ignore[union-attr]


def test_a_turn_holding_the_lease_or_waiting_to_retry_is_progress_not_a_stall(
    redis_ns: Any, db: Any
) -> None:
    """State untouched for an hour, but one conversation's turn holds the lease (a long
    call) and another's waits out a retry-after: neither is re-driven until its mark
    lapses."""
    settings = redis_ns.model_copy(update={"reconcile_after_s": 60.0})
    store, repo, inbox = (
        StateStore(make_redis(settings), settings),
        ConversationRepository(db),
        Inbox(db),
    )
    for e in ("calling", "waiting"):
        stuck_event(db, e)
        state = ConversationState.start(
            conversation_id(e),
            ConversationRequest.model_validate({"event_id": e, "topic": "Cars?"}),
            300,
        )
        store.create(state)
        old = state.model_copy(update={"updated_at": time.time() - 3_600})
        store._redis.set(store._key(state.conversation_id, "state"), old.model_dump_json())
    store.acquire(conversation_id("calling"))
    store.hold(conversation_id("waiting"), 5)

    def run() -> tuple[list[str], int]:
        redriven: list[str] = []
        workflow = Workflow(
            "conversation",
            StuckConversations(settings, store=store, repo=repo),
            redrive=lambda e, resume: redriven.append(e),
            give_up=lambda e, why: None,
        )
        report = reconcile(settings, inbox, [workflow])
        return redriven, report.progressing

    assert run() == ([], 2)
    assert inbox.get("waiting").attempts == 0  # type: ignore[union-attr]
    wait_for(  # the retry mark lapses; the lease is still held
        lambda: not store._redis.exists(store._key(conversation_id("waiting"), "active")),
        what="the retry mark to lapse",
    )
    assert run() == (["waiting"], 1)
