"""Fixtures shared by the tests of the core library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chimera.conversation.engine import ConversationEngine
from chimera.conversation.repository import ConversationRepository
from chimera.conversation.store import StateStore
from chimera.events.inbox import Inbox
from chimera.events.sink import KafkaEventSink
from chimera.kafka.clients import make_producer
from chimera.llm.registry import build_client
from chimera.redis_client import make_redis


@pytest.fixture
def make_engine(
    kafka_topics: Any, redis_ns: Any, db: Any, sim_calls: Any
) -> Iterator[Callable[..., ConversationEngine]]:
    """Factory: a conversation engine on this test's own topics and keys, against the
    real stores and the session's simulator; one LLM retry unless ``overrides`` (of its
    settings) say otherwise.  Its clients close after the test."""
    closers: list[Callable[[], None]] = []

    def make(**overrides: Any) -> ConversationEngine:
        settings = kafka_topics.model_copy(
            update={"redis_key_prefix": redis_ns.redis_key_prefix, "turn_max_retries": 1}
            | overrides
        )
        redis = make_redis(settings)
        llm = build_client(settings, redis_client=redis, engine=db)
        producer = make_producer(settings)
        closers.extend((llm.close, lambda: producer.close(timeout=10), redis.close))
        return ConversationEngine(
            settings,
            store=StateStore(redis, settings),
            llm=llm,
            repo=ConversationRepository(db),
            inbox=Inbox(db),
            sink=KafkaEventSink(producer, settings),
        )

    yield make
    for close in closers:
        close()
