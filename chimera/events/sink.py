"""The output-event sink: where the workflows' output goes on Kafka, lifecycle events
and dead letters (``EventSink``; ``KafkaEventSink`` in production)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kafka import KafkaProducer

from chimera.codec import encode
from chimera.events.deadletters import DeadLetter, dead_letter
from chimera.kafka.clients import publish_event
from chimera.models import (
    AnalysisCompleted,
    ConversationCompleted,
    ConversationFailed,
    ConversationStarted,
    OutputEvent,
    TurnCompleted,
    TurnFailed,
)
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: kafka-python's cap on one record (key, value, headers and framing), unless configured.
DEFAULT_MAX_REQUEST_SIZE = 1_048_576
#: Room a record keeps beside its value: the key (a conversation or context id), the
#: event_type and traceparent headers, the batch framing.
RECORD_OVERHEAD_BYTES = 4_096

#: The fields of each output event that grow with the input, the conversation or an
#: LLM's answer, emptied in this order while the event is too large for one record.
#: Their content is in Postgres (``GET /conversations/<id>``, ``analysis_runs``), and
#: each turn's text was published on its own.  Every other field is bounded by the
#: event models, so an event without these always fits.
BULKY: dict[type[OutputEvent], tuple[str, ...]] = {
    ConversationStarted: ("participants",),
    TurnCompleted: ("text",),
    TurnFailed: ("error_message",),
    ConversationCompleted: ("metadata", "transcript"),
    ConversationFailed: ("transcript",),
    AnalysisCompleted: ("bundle",),
}


class EventSink(Protocol):
    def publish(self, event: OutputEvent, *, wait: bool = True) -> None: ...

    def dead_letter(self, topic: str, letter: DeadLetter) -> None: ...


class KafkaEventSink:
    """Publishes each event to its topic and waits for the broker's ack."""

    def __init__(self, producer: KafkaProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings
        config: dict[str, Any] = getattr(producer, "config", {})
        limit = config.get("max_request_size") or DEFAULT_MAX_REQUEST_SIZE
        self._max_value_bytes = int(limit) - RECORD_OVERHEAD_BYTES

    def publish(self, event: OutputEvent, *, wait: bool = True) -> None:
        event = fit_record(event, self._max_value_bytes)
        publish_event(self._producer, self._settings, event, wait=wait)

    def dead_letter(self, topic: str, letter: DeadLetter) -> None:
        dead_letter(self._producer, topic, [letter])


def fit_record(event: OutputEvent, max_bytes: int) -> OutputEvent:
    """``event``, or (when its JSON is over ``max_bytes``) a copy with its bulky fields
    emptied until it fits, named in ``omitted``.

    A record over the producer's cap is refused every time it is sent: retrying the
    task would hold the conversation (all its turns paid for) for ever.
    """
    size = len(encode(event))
    if size <= max_bytes:
        return event
    omitted: list[str] = []
    for name in BULKY.get(type(event), ()):
        omitted.append(name)
        empty = type(getattr(event, name))()
        event = event.model_copy(update={name: empty, "omitted": tuple(omitted)})
        if len(encode(event)) <= max_bytes:
            break
    log.warning(
        "%s %s is %d bytes as JSON, over the record limit of %d: published without %s",
        event.event_type,
        event.event_id,
        size,
        max_bytes,
        ", ".join(omitted) or "anything left out (none of its fields can be)",
    )
    return event
