"""Kafka through the real broker: topics, produce/consume, committed offsets, security config."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from chimera.errors import KafkaUnavailable
from chimera.events.ids import output_event_id
from chimera.kafka.clients import (
    client_config,
    make_consumer,
    make_producer,
    publish,
    publish_event,
)
from chimera.kafka.topics import ensure_topics, list_topics
from chimera.models import TurnRequested, output_event_adapter
from chimera.settings import Settings, load_settings


def consume(
    settings: Settings,
    topic: str,
    count: int,
    *,
    group_id: str | None = None,
    timeout_s: float = 30,
) -> list[Any]:
    """Read ``count`` records from ``topic`` (group or manual assignment)."""
    consumer = make_consumer(settings, group_id=group_id)
    try:
        if group_id:
            consumer.subscribe([topic])
        else:
            parts = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if group_id:
                for r in records:
                    consumer.commit(
                        {
                            TopicPartition(r.topic, r.partition): OffsetAndMetadata(
                                r.offset + 1, "", -1
                            )
                        }
                    )
        return records
    finally:
        consumer.close()


def test_every_design_topic_is_created_once(kafka_topics: Settings) -> None:
    present = set(list_topics(kafka_topics))
    assert set(kafka_topics.topics.values()) <= present
    assert ensure_topics(kafka_topics) == []  # idempotent


def test_topics_get_the_configured_partitions(kafka_broker: Settings) -> None:
    from chimera.kafka.clients import admin_client

    scoped = kafka_broker.model_copy(
        update={"kafka_topic_partitions": 5, "topic_conversation_new": f"parts-{time.time_ns()}"}
    )
    ensure_topics(scoped, [scoped.topic_conversation_new])
    with admin_client(scoped) as admin:
        (desc,) = admin.describe_topics([scoped.topic_conversation_new])
    assert len(desc["partitions"]) == 5


def test_produce_and_consume_keep_key_value_and_headers(kafka_topics: Settings) -> None:
    topic = kafka_topics.topic_conversation_new
    producer = make_producer(kafka_topics)
    try:
        for i in range(10):
            publish(producer, topic, f"conv-{i % 3}", json.dumps({"i": i}).encode(), [("h", b"v")])
        producer.flush(10)
    finally:
        producer.close()
    records = consume(kafka_topics, topic, 10)
    assert sorted(json.loads(r.value)["i"] for r in records) == list(range(10))
    assert {r.headers[0] for r in records} == {("h", b"v")}
    # One key, one partition: a conversation's events stay in order.
    by_key: dict[bytes, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    ordered = [
        json.loads(r.value)["i"]
        for r in sorted(records, key=lambda r: r.offset)
        if r.key == b"conv-0"
    ]
    assert ordered == [0, 3, 6, 9]


def test_committed_offsets_resume_a_group_where_it_stopped(kafka_topics: Settings) -> None:
    topic = kafka_topics.topic_analysis_tasks
    producer = make_producer(kafka_topics)
    for i in range(4):
        publish(producer, topic, "ctx", str(i).encode())
    producer.flush(10)
    group = f"g-{time.time_ns()}"
    first = consume(kafka_topics, topic, 4, group_id=group)
    assert [r.value for r in first] == [b"0", b"1", b"2", b"3"]
    for i in range(4, 6):
        publish(producer, topic, "ctx", str(i).encode())
    producer.flush(10)
    producer.close()
    second = consume(kafka_topics, topic, 2, group_id=group)
    assert [r.value for r in second] == [b"4", b"5"]


def test_output_events_go_to_their_topic_with_their_key(kafka_topics: Settings) -> None:
    event = TurnRequested(
        event_id=output_event_id("conv-9", "turn.requested", 0),
        conversation_id="conv-9",
        turn_index=0,
        speaker="claude",
        provider="anthropic",
        model="claude-sonnet-5-5",
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    )
    producer = make_producer(kafka_topics)
    publish_event(producer, kafka_topics, event)
    producer.close()
    (record,) = consume(kafka_topics, kafka_topics.topic_conversation_turn, 1)
    assert record.key == b"conv-9"
    assert output_event_adapter.validate_json(record.value) == event
    assert dict(record.headers)["traceparent"] == event.traceparent.encode()  # type: ignore[union-attr]
    assert dict(record.headers)["event_type"] == b"turn.requested"


def test_an_unreachable_cluster_is_kafka_unavailable(settings: Settings) -> None:
    from tests.helpers import free_port

    nowhere = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    with pytest.raises(KafkaUnavailable, match="unreachable"):
        list_topics(nowhere)


def test_producer_waits_for_all_replicas(settings: Settings) -> None:
    cfg = client_config(settings)
    assert cfg["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in cfg


def test_security_settings_reach_every_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=ca,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="chimera",
        kafka_sasl_password="s3cret",
    )
    cfg = client_config(settings)
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["ssl_cafile"] == str(ca)
    assert cfg["ssl_check_hostname"] is True
    assert (cfg["sasl_mechanism"], cfg["sasl_plain_username"], cfg["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "chimera",
        "s3cret",
    )
