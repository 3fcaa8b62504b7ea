"""The decisions of the conversation tasks, without Celery: start, one turn, the end.

Each runs against the real stores (Redis, Postgres, Kafka) and the LLM simulator,
and its effects are read back from them: the state, the rows, the dead letters.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka import TopicPartition
from sqlalchemy import select

from chimera.codec import payload_hash
from chimera.conversation.engine import ConversationEngine, TurnNotReady
from chimera.conversation.turns import (
    ChainToSend,
    Failed,
    Finish,
    Next,
    Stop,
    attempt_turn,
    conclude,
    dispatch,
)
from chimera.db.tables import Conversation, Event
from chimera.decisions import RetryLLM, RetryPlumbing
from chimera.errors import (
    CrashLoop,
    DataRejected,
    LLMBadRequest,
    LLMRefused,
    ProviderOverloaded,
    RetriesExhausted,
)
from chimera.events.ids import conversation_id
from chimera.events.inbox import Source
from chimera.kafka.clients import make_consumer


def submit(engine: ConversationEngine, **fields: Any) -> str:
    """An accepted conversation event (as the bridge records it); its id."""
    event = {"event_id": f"evt-{uuid.uuid4().hex[:12]}", "topic": "Should cities ban cars?"}
    event |= fields
    engine.inbox.accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
        source=Source(engine.settings.topic_conversation_new, 0, 0),
    )
    return str(event["event_id"])


def started(engine: ConversationEngine, **fields: Any) -> tuple[str, str]:
    event_id = submit(engine, **fields)
    assert dispatch(engine, event_id) is not None
    return event_id, conversation_id(event_id)


def row(db: Any, cid: str) -> Any:
    with db.connect() as conn:
        return conn.execute(select(Conversation).where(Conversation.id == cid)).one()


def inbox_status(db: Any, event_id: str) -> str:
    with db.connect() as conn:
        status = conn.execute(select(Event.status).where(Event.event_id == event_id)).scalar_one()
    return str(status)


def dead_letters(engine: ConversationEngine, event_id: str) -> list[dict[str, str]]:
    """The headers of the event's dead letters (read until one is there, then a little on)."""
    settings = engine.settings
    consumer = make_consumer(settings)
    topic = settings.topic_conversation_dlq
    parts = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not found:
            for batch in consumer.poll(timeout_ms=200).values():
                found += [
                    {k: v.decode() for k, v in r.headers}
                    for r in batch
                    if r.key == event_id.encode()
                ]
        for batch in consumer.poll(timeout_ms=500).values():
            found += [
                {k: v.decode() for k, v in r.headers} for r in batch if r.key == event_id.encode()
            ]
    finally:
        consumer.close()
    return found


def test_start_sends_the_chain_once_unless_resumed(engine: ConversationEngine, db: Any) -> None:
    event_id = submit(engine, min_turns=2, max_turns=3)
    cid = conversation_id(event_id)
    assert dispatch(engine, event_id) == ChainToSend(cid, range(3))
    assert dispatch(engine, event_id) is None  # a duplicate hand-off sends nothing
    assert dispatch(engine, event_id, resume=True) == ChainToSend(cid, range(3))
    assert inbox_status(db, event_id) == "dispatched"


def test_turns_go_on_until_the_last_finishes_then_the_end_hands_off_its_analysis(
    engine: ConversationEngine,
    db: Any,
) -> None:
    event_id, cid = started(engine, min_turns=2, max_turns=2)
    assert attempt_turn(engine, cid, 0) == Next()
    assert attempt_turn(engine, cid, 0) == Next()  # a redelivered turn: done before
    assert attempt_turn(engine, cid, 1) == Finish()
    assert not engine.settings.analyze_completed_conversations
    assert conclude(engine, cid, analyse=lambda c: f"analysis-of-{c}") is None
    assert row(db, cid).status == "completed"
    assert inbox_status(db, event_id) == "done"
    assert attempt_turn(engine, cid, 1) == Stop()  # finalised: the state is gone
    engine.settings = engine.settings.model_copy(update={"analyze_completed_conversations": True})
    # A duplicate finalise finds it completed and asks for its analysis (the first
    # run's hand-off may not have happened).
    assert conclude(engine, cid, analyse=lambda c: f"analysis-of-{c}") == f"analysis-of-{cid}"


def test_a_turn_before_its_predecessor_waits_as_plumbing(engine: ConversationEngine) -> None:
    _, cid = started(engine, min_turns=2, max_turns=3)
    decision = attempt_turn(engine, cid, 1)
    assert isinstance(decision, RetryPlumbing)
    assert isinstance(decision.error, TurnNotReady)


def test_a_permanent_llm_failure_fails_the_conversation_as_llm_permanent(
    engine: ConversationEngine, db: Any, sim_calls: Any
) -> None:
    event_id, cid = started(engine, min_turns=2, max_turns=3)
    sim_calls.add_fault("bad_request", provider="anthropic", count=1)
    decision = attempt_turn(engine, cid, 0)
    assert isinstance(decision, Failed)
    assert isinstance(decision.error, LLMRefused)
    assert isinstance(decision.error.cause, LLMBadRequest)
    assert row(db, cid).status == "failed" and "LLMBadRequest" in row(db, cid).error
    assert inbox_status(db, event_id) == "dead_lettered"
    (letter,) = dead_letters(engine, event_id)
    assert letter["x-dlq-reason"] == "llm_permanent"
    assert letter["x-error-class"] == "LLMBadRequest"  # the failure, not its wrapper
    assert attempt_turn(engine, cid, 0) == Stop()  # failed: later turns do nothing


def test_a_retryable_failure_is_retried_then_its_retries_run_out(
    engine: ConversationEngine, db: Any, sim_calls: Any
) -> None:
    event_id, cid = started(engine, min_turns=2, max_turns=3)
    sim_calls.add_fault("overloaded", provider="anthropic", count=2)
    first = attempt_turn(engine, cid, 0, attempt=1)
    assert isinstance(first, RetryLLM)
    assert isinstance(first.error, ProviderOverloaded) and first.countdown_s > 0
    assert engine.store.active(cid)  # waiting to retry is progress, not a stall
    assert row(db, cid).status == "running"
    last = attempt_turn(engine, cid, 0, attempt=2)  # turn_max_retries=1: the last attempt
    assert isinstance(last, Failed) and isinstance(last.error, RetriesExhausted)
    (letter,) = dead_letters(engine, event_id)
    assert letter["x-dlq-reason"] == "retries_exhausted"
    assert letter["x-error-class"] == "ProviderOverloaded"
    assert letter["x-attempts"] == "2"


def test_a_turn_that_keeps_killing_its_worker_fails_without_running(
    engine: ConversationEngine, sim_calls: Any
) -> None:
    event_id, cid = started(engine, min_turns=2, max_turns=3)
    decision = attempt_turn(engine, cid, 0, crashes=3)
    assert isinstance(decision, Failed) and isinstance(decision.error, CrashLoop)
    assert sim_calls.calls().total == 0
    (letter,) = dead_letters(engine, event_id)
    assert letter["x-dlq-reason"] == "worker_lost"
    assert letter["x-error-class"] == "CrashLoop"
    assert attempt_turn(engine, cid, 0) == Stop()


def test_data_a_store_refuses_ends_the_event_once_as_data_rejected(
    engine: ConversationEngine, db: Any
) -> None:
    """Before its conversation exists, the event is dead-lettered; after, the
    conversation fails.  Either way once, with the error class's reason."""
    early = submit(engine)
    refused = DataRejected("cannot store the conversation: value too long", event_id=early)
    engine.give_up(early, refused)
    engine.give_up(early, refused)  # a second run finds the event settled
    assert inbox_status(db, early) == "dead_lettered"
    letters = dead_letters(engine, early)
    assert [h["x-dlq-reason"] for h in letters] == ["data_rejected"]
    assert letters[0]["x-error-class"] == "DataRejected"

    late, cid = started(engine, min_turns=2, max_turns=3)
    engine.give_up(late, DataRejected("cannot store the turn", event_id=late))
    assert row(db, cid).status == "failed"
    assert inbox_status(db, late) == "dead_lettered"
    assert [h["x-dlq-reason"] for h in dead_letters(engine, late)] == ["data_rejected"]
