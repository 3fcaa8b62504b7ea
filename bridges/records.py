"""One Kafka record -> one outcome: handed off, a duplicate, or dead-lettered.

``RecordProcessor.process`` is the bridge's per-record logic, testable without
the consumer loop.  It returns an ``Outcome`` once the record is durably dealt
with (inbox row + hand-off, or a dead letter the broker acknowledged), so its
offset may be committed.  It raises ``ServiceUnavailable`` (or, for a bug,
anything else) when it could not finish: the record must then be retried,
never committed past.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kafka import KafkaProducer
from opentelemetry.trace import Span

from chimera import tracing
from chimera.codec import decode_object, parse_json_object
from chimera.errors import (
    ConflictingDuplicate,
    InputError,
    ServiceUnavailable,
)
from chimera.events import intake
from chimera.events.deadletters import dead_letter, dlq_topic_for, letter_for, quoted
from chimera.events.inbox import Acceptance, Arrival, EventKind, Inbox, Source
from chimera.logs import bind, log_context
from chimera.redis_errors import broker_errors
from chimera.settings import Settings
from tasks.handoff import send_handoff

log = logging.getLogger(__name__)


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


def hand_off(app: Celery, kind: str, event_id: str, producer: Any = None) -> str:
    """Send the event's hand-off task; an unreachable broker is ``RedisUnavailable``."""
    with broker_errors(f"cannot hand the {kind} event to the Celery broker", event_id=event_id):
        return send_handoff(app, kind, event_id, producer=producer)


@dataclass(frozen=True)
class Decoded:
    """A record that decoded into an event."""

    event_id: str
    payload: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class Undecodable:
    """A record that did not: what to dead-letter it with."""

    error: BaseException
    event_id: str | None = None


def _key(record: Any) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _source(record: Any) -> Source:
    """Where the record was read, with its key and headers (null header values empty)."""
    headers = tuple((k, v if v is not None else b"") for k, v in (record.headers or ()))
    return Source(record.topic, record.partition, record.offset, record.key, headers)


@dataclass
class Batch:
    """A poll's records, decoded and recorded in the inbox together (``prepare``)."""

    decoded: dict[tuple[str, int, int], Decoded | Undecodable]
    accepted: dict[tuple[str, int, int], Acceptance | ConflictingDuplicate]
    #: Each record's span, started when the batch was prepared, ended when it is finished.
    spans: dict[tuple[str, int, int], Span]
    #: Events handed off from this batch, in order (marked dispatched by ``settle``).
    handed_off: list[str] = field(default_factory=list)
    #: The Celery producer the batch's hand-offs share (see ``publishing``).
    producer: Any = None


class RecordProcessor:
    """Decode and record a batch of records in the inbox at once (one transaction),
    then hand off (or dead-letter) one record at a time, in order."""

    def __init__(
        self, settings: Settings, inbox: Inbox, producer: KafkaProducer, app: Celery
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._producer = producer
        self._app = app
        self._kinds = kinds_by_topic(settings)

    def process(self, record: Any) -> Result:
        """One record: prepare, finish and settle a batch of one."""
        batch = self.prepare([record])
        try:
            return self.finish(record, batch)
        finally:
            self.settle(batch)

    def prepare(self, records: Sequence[Any]) -> Batch:
        """Decode every record and record the events in the inbox, in one transaction.

        Nothing is handed off or dead-lettered yet, so if this raises (Postgres is
        down: ``ServiceUnavailable``) the whole batch can simply be read again.
        """
        spans = {_key(r): tracing.start_consuming(r) for r in records}
        decoded = {_key(r): self._decode(r) for r in records}
        arrivals: dict[tuple[str, int, int], Arrival] = {}
        for record in records:
            item = decoded[_key(record)]
            if isinstance(item, Decoded):
                kind = self._kinds[record.topic]
                source = _source(record)
                arrivals[_key(record)] = Arrival(
                    item.event_id, kind, item.payload, item.digest, source
                )
        try:
            with tracing.linked(f"{len(records)} records recorded", list(spans.values())):
                results = intake.accept(self._inbox, list(arrivals.values()))
        except BaseException as exc:
            for span in spans.values():
                tracing.end(span, exc)
            raise
        return Batch(decoded, dict(zip(arrivals, results, strict=True)), spans)

    @contextlib.contextmanager
    def publishing(self, batch: Batch) -> Iterator[None]:
        """The batch's hand-offs share one producer: one checkout from the pool, not one
        a record."""
        with self._app.producer_or_acquire() as producer:
            batch.producer = producer
            try:
                yield
            finally:
                batch.producer = None

    def finish(self, record: Any, batch: Batch) -> Result:
        """Hand off or dead-letter one prepared record (its log lines carry where it came
        from and, once decoded, its event id).  Raises if it could not: the record must
        then be read again."""
        with (
            tracing.within(batch.spans[_key(record)]) as span,
            log_context(topic=record.topic, partition=record.partition, offset=record.offset),
        ):
            result = self._finish(record, batch)
            if span.is_recording():
                span.set_attributes(
                    {
                        "chimera.event_id": quoted(result.event_id or ""),
                        "chimera.event_kind": result.kind or "",
                        "chimera.outcome": str(result.outcome),
                        "chimera.dlq_reason": result.reason or "",
                    }
                )
            return result

    def settle(self, batch: Batch) -> None:
        """Mark the batch's handed-off events dispatched, in one statement, and end the
        spans of records never finished.

        Best effort: the worker marks an event dispatched too when it starts, and a
        redelivered event still ``received`` is only handed off again (harmless)."""
        spans = list(batch.spans.values())
        for span in spans:
            tracing.end(span)  # no-op for a finished one
        if not batch.handed_off:
            return
        try:
            with tracing.linked(f"{len(batch.handed_off)} events dispatched", spans):
                intake.dispatched(self._inbox, batch.handed_off)
        except ServiceUnavailable as exc:
            log.warning("could not mark %d events dispatched: %s", len(batch.handed_off), exc)

    def _decode(self, record: Any) -> Decoded | Undecodable:
        """Parse the record once: the object validated and hashed is the one the inbox
        stores (the codec refuses what Postgres JSONB cannot hold, so storing it is no
        outage)."""
        kind = self._kinds[record.topic]
        try:
            payload = parse_json_object(record.value, max_bytes=self._settings.max_event_bytes)
            event, digest = decode_object(payload, kind, self._settings)
        except InputError as exc:
            return Undecodable(exc, event_id=exc.ids.get("event_id"))
        except Exception as exc:  # a codec bug this input triggers: park it, don't stall on it
            log.error(
                "cannot decode the record at %s[%d]@%d; dead-lettering it: %s: %s\n%s",
                record.topic,
                record.partition,
                record.offset,
                type(exc).__name__,
                quoted(str(exc)),
                # The frames, not the exception's text: that may quote the input at length.
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            # Dead-lettered as the input error it is (the reason comes from the class);
            # the message names the codec's exception, the log above has its frames.
            error = InputError(f"the codec failed on this record: {type(exc).__name__}")
            return Undecodable(error)
        return Decoded(event.event_id, payload, digest)

    def _finish(self, record: Any, batch: Batch) -> Result:
        kind = self._kinds[record.topic]
        key = _key(record)
        item = batch.decoded[key]
        if isinstance(item, Undecodable):
            return self._dead_letter(record, kind, item.error, event_id=item.event_id)
        event_id = item.event_id
        bind(event_id=event_id)  # undone with the record's context
        acceptance = batch.accepted[key]
        if isinstance(acceptance, ConflictingDuplicate):
            return self._dead_letter(record, kind, acceptance, event_id=event_id)
        if event_id in batch.handed_off or not acceptance.hand_off:
            status = acceptance.event.status
            log.debug("event %s is a duplicate (already %s); nothing to do", event_id, status)
            return Result(Outcome.DUPLICATE, event_id, kind)
        task_id = hand_off(self._app, kind, event_id, batch.producer)
        batch.handed_off.append(event_id)
        outcome = Outcome.HANDED_OFF if acceptance.new else Outcome.HANDED_OFF_AGAIN
        log.debug("event %s handed off as task %s (%s)", event_id, task_id, outcome)
        return Result(outcome, event_id, kind)

    def _dead_letter(
        self,
        record: Any,
        kind: str,
        exc: BaseException,
        *,
        event_id: str | None = None,
    ) -> Result:
        letter = letter_for(record, exc, event_id=event_id)
        topic = dlq_topic_for(self._settings, record.topic, kind)
        dead_letter(self._producer, topic, [letter])  # waits for the broker's ack
        log.warning(
            "event %s from %s[%d]@%d dead-lettered to %s: %s (%s)",
            quoted(event_id or "-"),
            record.topic,
            record.partition,
            record.offset,
            topic,
            letter.reason,
            quoted(letter.error_message),
        )
        return Result(Outcome.DEAD_LETTERED, event_id, kind, letter.reason)
