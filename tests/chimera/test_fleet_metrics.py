"""The fleet collector against real Postgres, Redis and Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, insert

from chimera.db.tables import LLMCall
from chimera.errors import RedisUnavailable
from chimera.fleet_metrics import FleetCollector
from chimera.fleet_sources import read_kafka, read_redis
from chimera.kafka.clients import make_consumer, make_producer
from chimera.llm.breaker import CircuitBreaker
from chimera.redis_client import make_redis
from chimera.settings import Settings
from tests.helpers import free_port, wait_for


@pytest.fixture
def collector_for(db: Engine, redis_ns: Settings, kafka_broker: Settings) -> Iterator[Any]:
    made: list[FleetCollector] = []

    def make(settings: Settings = redis_ns, **options: Any) -> FleetCollector:
        collector = FleetCollector(settings, engine=db, **options)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close()


def add_calls(db: Engine, n: int) -> None:
    row = {"provider": "anthropic", "model": "m", "task": "turn", "status": "ok"}
    with db.begin() as conn:
        conn.execute(insert(LLMCall), [row] * n)


def calls(collector: FleetCollector) -> int:
    return sum(t.calls for t in collector.readings()["postgres"].stats.llm)


def test_figures_are_cached_for_the_configured_time(db: Engine, collector_for: Any) -> None:
    cached = collector_for(cache_s=60)
    fresh = collector_for(cache_s=0)
    add_calls(db, 2)
    assert calls(cached) == 2
    assert calls(fresh) == 2
    add_calls(db, 3)
    assert calls(cached) == 2  # within its cache time: not read again
    assert calls(fresh) == 5


def test_one_source_down_leaves_the_others(redis_ns: Settings, collector_for: Any) -> None:
    dead_redis = redis_ns.model_copy(update={"redis_port": free_port()})
    readings = collector_for(dead_redis).readings()
    assert not readings["redis"].ok
    assert "Redis" in readings["redis"].error
    assert readings["postgres"].ok and readings["kafka"].ok
    client = make_redis(dead_redis)
    try:
        with pytest.raises(RedisUnavailable):
            read_redis(client, client, dead_redis)
    finally:
        client.close()


def test_a_cooled_down_open_breaker_reads_as_half_open(
    redis_ns: Settings, redis_client: Any
) -> None:
    quick = redis_ns.model_copy(update={"breaker_failure_threshold": 1, "breaker_cooldown_s": 1.0})
    breaker = CircuitBreaker(redis_client, quick)
    assert breaker.record("anthropic", "claude-x", success=False) == "open"
    assert read_redis(redis_client, redis_client, quick).breakers == {
        ("anthropic", "claude-x"): "open"
    }
    wait_for(
        lambda: (
            read_redis(redis_client, redis_client, quick).breakers
            == {("anthropic", "claude-x"): "half_open"}
        ),
        what="the cooldown to pass",
    )


def test_bridge_lag_and_dlq_sizes_come_from_kafka_offsets(kafka_topics: Settings) -> None:
    settings = kafka_topics.model_copy(update={"kafka_consumer_group_id": "lag-test-group"})
    new, dlq = settings.topic_conversation_new, settings.topic_conversation_dlq
    producer = make_producer(settings)
    try:
        sent = [producer.send(new, key=f"k{i}".encode(), value=b"{}").get(10) for i in range(6)]
        for i in range(2):
            producer.send(dlq, key=f"d{i}".encode(), value=b"{}").get(10)
    finally:
        producer.close()
    # The group has committed one partition up to its end.
    done = sent[0].partition
    end = max(m.offset for m in sent if m.partition == done) + 1
    consumer = make_consumer(settings, group_id=settings.kafka_consumer_group_id)
    try:
        consumer.commit({TopicPartition(new, done): OffsetAndMetadata(end, "", -1)})
    finally:
        consumer.close()

    stats = read_kafka(settings)
    assert stats.lag == {new: 6 - end, settings.topic_analysis_tasks: 0}
    assert stats.dlq == {dlq: 2, settings.topic_analysis_dlq: 0}
