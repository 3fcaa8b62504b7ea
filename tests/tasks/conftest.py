"""Fixtures for conversation flows: the embedded worker with Kafka, Postgres and the simulator."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import TopicPartition
from sqlalchemy import select

from chimera.codec import payload_hash
from chimera.db.tables import AnalysisRun, Conversation, ConversationTurn, Event, LLMCall
from chimera.events.ids import conversation_id, run_id
from chimera.events.inbox import Inbox, Source
from chimera.kafka.clients import make_consumer
from chimera.kafka.topics import ensure_topics
from tasks.handoff import send_handoff
from tests.helpers import wait_for


@pytest.fixture(scope="session")
def session_topics(kafka_broker: Any) -> Any:
    """The session's default topic names exist on the session broker."""
    ensure_topics(kafka_broker)
    return kafka_broker


class Flow:
    """Put conversation events in the way the bridge does, and look at what came out."""

    def __init__(self, settings: Any, engine: Any, app: Any) -> None:
        self.settings = settings
        self.engine = engine
        self.app = app
        self.inbox = Inbox(engine)

    def event(self, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"evt-{uuid.uuid4().hex[:12]}",
            "topic": "Should cities ban cars?",
        } | fields

    def submit(self, event: dict[str, Any], *, handoffs: int = 1) -> str:
        acceptance = self.inbox.accept(
            event_id=event["event_id"],
            kind="conversation",
            payload=event,
            payload_hash=payload_hash(event),
            source=Source(self.settings.topic_conversation_new, 0, 0),
        )
        assert acceptance.new
        for _ in range(handoffs):
            send_handoff(self.app, "conversation", event["event_id"])
        return conversation_id(event["event_id"])

    def analysis_event(self, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"evt-{uuid.uuid4().hex[:12]}",
            "context_id": f"doc-{uuid.uuid4().hex[:8]}",
            "segments": [
                {
                    "speaker": "Ana",
                    "text": "Cars make cities loud. Everyone knows bans always work.",
                },
                {
                    "speaker": "Ben",
                    "text": "A ban would hurt shops. Ana only says that because she cycles.",
                },
            ],
        } | fields

    def submit_analysis(self, event: dict[str, Any], *, handoffs: int = 1) -> str:
        acceptance = self.inbox.accept(
            event_id=event["event_id"],
            kind="analysis",
            payload=event,
            payload_hash=payload_hash(event),
            source=Source(self.settings.topic_analysis_tasks, 0, 0),
        )
        assert acceptance.new
        for _ in range(handoffs):
            send_handoff(self.app, "analysis", event["event_id"])
        return run_id(event["event_id"])

    def run(self, rid: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(AnalysisRun).where(AnalysisRun.id == rid)).one_or_none()

    def runs_of(self, event_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(AnalysisRun).where(AnalysisRun.event_id == event_id)))

    def wait_run(self, rid: str, timeout_s: float = 90) -> Any:
        return wait_for(
            lambda: self.run(rid), timeout_s=timeout_s, interval_s=0.2, what=f"run {rid}"
        )

    def wait_event(self, event_id: str, status: str, timeout_s: float = 60) -> None:
        wait_for(
            lambda: self.event_status(event_id) == status,
            timeout_s=timeout_s,
            interval_s=0.2,
            what=f"event {event_id} {status}",
        )

    def conversation(self, cid: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(Conversation).where(Conversation.id == cid)).one_or_none()

    def wait(self, cid: str, status: str = "completed", timeout_s: float = 90) -> Any:
        def done() -> Any:
            row = self.conversation(cid)
            return row if row is not None and row.status == status else None

        return wait_for(done, timeout_s=timeout_s, interval_s=0.2, what=f"{cid} to be {status}")

    def turns(self, cid: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(ConversationTurn)
                    .where(ConversationTurn.conversation_id == cid)
                    .order_by(ConversationTurn.turn_index)
                )
            )

    def llm_calls(self, cid: str, *, count: int = 0, timeout_s: float = 30) -> list[Any]:
        """The conversation's ``llm_calls`` rows, once there are at least ``count``.

        Rows are written off the call path, in batches, so the conversation's row can be
        committed a moment before its last calls' rows are.
        """

        def rows() -> list[Any]:
            with self.engine.connect() as conn:
                return list(
                    conn.execute(
                        select(LLMCall).where(LLMCall.owner_id == cid).order_by(LLMCall.id)
                    )
                )

        found = rows()
        if len(found) < count:
            wait_for(lambda: len(rows()) >= count, timeout_s=timeout_s, what=f"{count} llm_calls")
            found = rows()
        return found

    def event_status(self, event_id: str) -> str:
        with self.engine.connect() as conn:
            return str(
                conn.execute(select(Event.status).where(Event.event_id == event_id)).scalar_one()
            )

    def messages(self, topic: str, key: str, *, count: int, timeout_s: float = 30) -> list[Any]:
        """Records with ``key`` on ``topic`` (read from the start of every partition)."""
        consumer = make_consumer(self.settings)
        parts = [TopicPartition(topic, p) for p in range(self.settings.kafka_topic_partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=200).values():
                    found += [r for r in batch if r.key == key.encode()]
                if len(found) >= count:
                    # read on a little: more than expected would be a duplicate
                    for batch in consumer.poll(timeout_ms=500).values():
                        found += [r for r in batch if r.key == key.encode()]
                    break
        finally:
            consumer.close()
        return found

    @staticmethod
    def values(records: list[Any]) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in records]


@pytest.fixture
def flow(
    session_topics: Any,
    db: Any,
    sim_calls: Any,
    celery_session_worker: Any,
    celery_session_app: Any,
    redis_server: None,
) -> Iterator[Flow]:
    # ``db`` empties the tables after the test: later tests see none of its rows.
    yield Flow(session_topics, db, celery_session_app)


@pytest.fixture
def make_flow() -> Callable[..., Flow]:
    return Flow
