"""One Kafka record -> one outcome: handed off, a duplicate, or dead-lettered.

``RecordProcessor.process`` is the bridge's per-record logic, testable without
the consumer loop.  It returns an ``Outcome`` once the record is durably dealt
with (inbox row + hand-off, or a dead letter the broker acknowledged), so its
offset may be committed.  It raises ``ServiceUnavailable`` (or, for a bug,
anything else) when it could not finish: the record must then be retried,
never committed past.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kafka import KafkaProducer
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from chimera import tracing
from chimera.codec import decode_event, parse_json_object
from chimera.errors import ConflictingDuplicate, InputError, RedisUnavailable, SchemaInvalid
from chimera.inbox import EventKind, Inbox, Source
from chimera.kafka.consuming import letter_for
from chimera.kafka.dlq import dead_letter, dlq_topic_for
from chimera.logs import bind, log_context
from chimera.settings import Settings
from tasks.handoff import send_handoff

log = logging.getLogger(__name__)

#: Inbox statuses past which a redelivered event needs no new hand-off.
SETTLED = frozenset({"dispatched", "done", "dead_lettered"})


class Outcome(enum.StrEnum):
    HANDED_OFF = "handed_off"
    #: A duplicate still ``received``: its earlier hand-off may have been lost.
    HANDED_OFF_AGAIN = "handed_off_again"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_id: str | None = None
    kind: str | None = None
    #: The ``x-dlq-reason`` of a dead letter.
    reason: str | None = None


def kinds_by_topic(settings: Settings) -> dict[str, EventKind]:
    """The input topics and the kind of event each carries."""
    return {
        settings.topic_conversation_new: "conversation",
        settings.topic_analysis_tasks: "analysis",
    }


def hand_off(app: Celery, kind: str, event_id: str) -> str:
    """Send the event's hand-off task; an unreachable broker is ``RedisUnavailable``."""
    try:
        return send_handoff(app, kind, event_id)
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise RedisUnavailable(
            f"cannot hand the {kind} event to the Celery broker: {exc}", event_id=event_id
        ) from exc


def check_storable(payload: dict[str, Any], event_id: str) -> None:
    """Raise ``SchemaInvalid`` if a string holds NUL, which Postgres JSONB cannot store.

    Left to the inbox, such a payload fails its INSERT as if Postgres were down,
    and the bridge would retry it for ever.  (The codec should reject it; until
    it does, the bridge does.)
    """
    stack: list[tuple[str, Any]] = [("", payload)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    stack.append((where, key))
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            message = "contains a NUL character, which cannot be stored"
            raise SchemaInvalid(
                f"{path} {message}", [{"field": path, "message": message}], event_id=event_id
            )


class RecordProcessor:
    """Decode, record in the inbox, hand off (or dead-letter) one record at a time."""

    def __init__(
        self, settings: Settings, inbox: Inbox, producer: KafkaProducer, app: Celery
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._producer = producer
        self._app = app
        self._kinds = kinds_by_topic(settings)

    def process(self, record: Any) -> Result:
        """Decode, record, hand off or dead-letter one record (its log lines carry where
        it came from and, once decoded, its event id)."""
        with (
            tracing.consuming(record) as span,
            log_context(topic=record.topic, partition=record.partition, offset=record.offset),
        ):
            result = self._process(record)
            if span.is_recording():
                span.set_attributes(
                    {
                        "chimera.event_id": result.event_id or "",
                        "chimera.event_kind": result.kind or "",
                        "chimera.outcome": str(result.outcome),
                        "chimera.dlq_reason": result.reason or "",
                    }
                )
            return result

    def _process(self, record: Any) -> Result:
        kind = self._kinds[record.topic]
        try:
            event, digest = decode_event(record.value, kind, self._settings)
            # The object decode_event validated and hashed, as the inbox stores it.
            payload = parse_json_object(record.value, max_bytes=self._settings.max_event_bytes)
            check_storable(payload, event.event_id)
        except InputError as exc:
            return self._dead_letter(record, kind, exc, event_id=exc.ids.get("event_id"))
        except Exception as exc:  # a codec bug this input triggers: park it, don't stall on it
            log.exception(
                "cannot decode the record at %s[%d]@%d; dead-lettering it",
                record.topic,
                record.partition,
                record.offset,
            )
            return self._dead_letter(record, kind, exc, reason=InputError.dlq_reason)
        event_id = event.event_id
        bind(event_id=event_id)  # undone with the record's context
        try:
            acceptance = self._inbox.accept(
                event_id=event_id,
                kind=kind,
                payload=payload,
                payload_hash=digest,
                source=Source(record.topic, record.partition, record.offset),
            )
        except ConflictingDuplicate as exc:
            return self._dead_letter(record, kind, exc, event_id=event_id)
        status = acceptance.event.status
        if not acceptance.new and status in SETTLED:
            log.debug("event %s is a duplicate (already %s); nothing to do", event_id, status)
            return Result(Outcome.DUPLICATE, event_id, kind)
        task_id = hand_off(self._app, kind, event_id)
        self._inbox.mark(event_id, "dispatched")
        outcome = Outcome.HANDED_OFF if acceptance.new else Outcome.HANDED_OFF_AGAIN
        log.debug("event %s handed off as task %s (%s)", event_id, task_id, outcome)
        return Result(outcome, event_id, kind)

    def _dead_letter(
        self,
        record: Any,
        kind: str,
        exc: BaseException,
        *,
        reason: str | None = None,
        event_id: str | None = None,
    ) -> Result:
        letter = letter_for(record, exc, reason=reason, event_id=event_id)
        topic = dlq_topic_for(self._settings, record.topic, kind)
        dead_letter(self._producer, topic, [letter])  # waits for the broker's ack
        log.warning(
            "event %s from %s[%d]@%d dead-lettered to %s: %s (%s)",
            event_id or "-",
            record.topic,
            record.partition,
            record.offset,
            topic,
            letter.reason,
            letter.error_message,
        )
        return Result(Outcome.DEAD_LETTERED, event_id, kind, letter.reason)
