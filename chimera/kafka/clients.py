"""Producer, consumer and admin clients built from the settings.

Every client gets the same security settings (``KAFKA_SECURITY_PROTOCOL`` and
friends), so SSL/SASL is configured once for the bridge, the replay tool and the
CLI alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from chimera import tracing
from chimera.codec import encode
from chimera.kafka.errors import kafka_errors
from chimera.models import OutputEvent
from chimera.settings import Settings

Headers = list[tuple[str, bytes]]


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by every Kafka client."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        # Else kafka-python waits its own 30 s for a first broker, whatever the settings say.
        "bootstrap_timeout_ms": settings.kafka_request_timeout_ms,
        "client_id": settings.otel_service_name,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cfg["ssl_check_hostname"] = True
        for key in ("cafile", "certfile", "keyfile"):
            path = getattr(settings, f"kafka_ssl_{key}")
            if path is not None:
                cfg[f"ssl_{key}"] = str(path)
    if settings.kafka_security_protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            cfg["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return cfg


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A producer that waits for every in-sync replica and never duplicates."""
    cfg = client_config(settings) | {
        "acks": "all",  # explicit: kafka-python 3.0 changed the default
        "enable_idempotence": True,
        "linger_ms": settings.kafka_linger_ms,
        "max_in_flight_requests_per_connection": 5,
        "retries": 5,
        "max_block_ms": 10_000,
    }
    with kafka_errors("cannot create a Kafka producer"):
        return KafkaProducer(**(cfg | overrides))


def make_consumer(
    settings: Settings,
    topics: Sequence[str] = (),
    *,
    group_id: str | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    """A consumer that commits nothing by itself and starts from the earliest offset."""
    cfg = client_config(settings) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.kafka_max_poll_records,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
    }
    with kafka_errors("cannot create a Kafka consumer"):
        consumer = KafkaConsumer(**(cfg | overrides))
    if topics:
        consumer.subscribe(list(topics))
    return consumer


@contextmanager
def admin_client(settings: Settings, *, timeout_ms: int = 5_000) -> Iterator[KafkaAdminClient]:
    """An admin client, closed on exit; an unreachable cluster is ``KafkaUnavailable``."""
    with kafka_errors(f"Kafka at {settings.kafka_bootstrap_servers} is unreachable"):
        admin = KafkaAdminClient(
            **client_config(settings)
            | {
                "request_timeout_ms": timeout_ms,
                "bootstrap_timeout_ms": timeout_ms,
            }
        )
    try:
        yield admin
    finally:
        admin.close()


def publish(
    producer: KafkaProducer,
    topic: str,
    key: str,
    value: bytes,
    headers: Iterable[tuple[str, bytes]] = (),
) -> FutureRecordMetadata:
    """Send one record keyed by its conversation/context id (``RecordTooLarge`` if the
    producer refuses its size)."""
    with kafka_errors(f"cannot publish to {topic}"):
        return producer.send(topic, key=key.encode(), value=value, headers=list(headers))


def publish_event(
    producer: KafkaProducer,
    settings: Settings,
    event: OutputEvent,
    *,
    timeout_s: float = 10.0,
    wait: bool = True,
) -> None:
    """Publish an output event to its topic and (unless ``wait`` is False) wait for the
    broker's ack.  Records of one key keep their order, so waiting on a later one
    also confirms the earlier ones."""
    topic = settings.topics[event.topic_role]
    with tracing.producing(topic, event.key) as span:
        if span.is_recording():
            span.set_attribute("chimera.event_type", str(event.event_type))
            if event.traceparent is None:
                event = event.model_copy(update={"traceparent": tracing.traceparent()})
        headers: Headers = [("event_type", event.event_type.encode())]
        if event.traceparent:
            headers.append(("traceparent", event.traceparent.encode()))
        future = publish(producer, topic, event.key, encode(event), headers)
        if not wait:
            return
        with kafka_errors(f"publish to {topic} was not acknowledged"):
            future.get(timeout=timeout_s)
