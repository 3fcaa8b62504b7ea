"""Where the engine's output goes on Kafka: lifecycle events and dead letters."""

from __future__ import annotations

import json
from typing import Protocol

from kafka import KafkaProducer

from chimera.kafka.clients import publish_event
from chimera.kafka.dlq import DeadLetter, dead_letter
from chimera.models import OutputEvent
from chimera.settings import Settings


class EventSink(Protocol):
    def publish(self, event: OutputEvent, *, wait: bool = True) -> None: ...

    def dead_letter(self, topic: str, letter: DeadLetter) -> None: ...


class KafkaEventSink:
    """Publishes each event to its topic and waits for the broker's ack."""

    def __init__(self, producer: KafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings

    def publish(self, event: OutputEvent, *, wait: bool = True) -> None:
        publish_event(self._producer, self._settings, event, wait=wait)

    def dead_letter(self, topic: str, letter: DeadLetter) -> None:
        dead_letter(self._producer, topic, [letter])


def original_value(payload: dict[str, object]) -> bytes:
    """An inbox payload back as the JSON bytes of a Kafka value."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
