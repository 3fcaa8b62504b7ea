"""Writing dead letters: the original record, with headers saying why (docs/contract.md).

Every dead letter is written here, by the bridge (a record it cannot take:
``letter_for``) and by the workers (an event that failed for good:
``DeadLetter.of_event``).  Its reason is always the ``dlq_reason`` of the error's
class (``chimera.errors``), never free text, so the reasons are a closed set the
contract lists.  A dead letter keeps the original key and headers and carries
``x-replay-count`` forward, so the replay cap holds across every path.
Reading them back is ``chimera.events.letters``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from chimera import tracing
from chimera.errors import ChimeraError, Unrecoverable
from chimera.events.inbox import InboxEvent
from chimera.kafka.errors import kafka_errors
from chimera.settings import Settings
from chimera.untrusted import clip, quote_limit

log = logging.getLogger(__name__)

#: Room past the quote bound for the "…[N more chars]" marker of text the codec cut
#: already (it cuts the ids and keys it quotes): cut again, it would miscount.
MARKER_ROOM = 32


def quoted(text: str) -> str:
    """Text the input chose, as a dead-letter header or a log line quotes it: at most
    the quote bound (``CHIMERA_MAX_QUOTED_CHARS``) and a marker."""
    return clip(text, quote_limit() + MARKER_ROOM)


#: The client's or the broker's answer to a record over its size cap.
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


@dataclass(frozen=True)
class DeadLetter:
    """What to dead-letter: the original key, value and headers, and why."""

    key: bytes | None
    value: bytes | None
    reason: str
    error_class: str
    error_message: str
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    event_id: str | None = None
    attempts: int = 1
    replay_count: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()
    #: Set when the original key, value and headers were left out (``without_original``).
    omitted: str | None = None

    @classmethod
    def from_error(cls, error: BaseException, **fields: Any) -> DeadLetter:
        """A dead letter for ``error``: the reason of its class; the class and message
        of what failed (an ``Unrecoverable``'s cause)."""
        cause = error.cause if isinstance(error, Unrecoverable) else error
        return cls(
            reason=reason_of(error),
            error_class=type(cause).__name__,
            error_message=cause.message if isinstance(cause, ChimeraError) else str(cause),
            **fields,
        )

    @classmethod
    def of_event(
        cls,
        event: InboxEvent,
        error: BaseException,
        *,
        key: str | None = None,
        attempts: int | None = None,
    ) -> DeadLetter:
        """The dead letter of an inbox event a worker gives up on: the record it arrived
        in, as far as the inbox keeps it (its payload, its key and headers, so its
        ``x-replay-count`` goes on from where it was).  An event that came with no key
        (through Redis, or made by Chimera) is keyed by ``key``, else its event id."""
        source = event.source
        fallback = (key or event.event_id).encode()
        return cls.from_error(
            error,
            key=source.key if source.key is not None else fallback,
            value=original_value(event.payload),
            headers=source.headers,
            original_topic=event.source.topic,
            original_partition=event.source.partition,
            original_offset=event.source.offset,
            event_id=event.event_id,
            attempts=max(1, event.attempts) if attempts is None else attempts,
        )

    def record_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (minus earlier x-dlq ones) plus ours, as strings.

        Text the input chose (the error message quotes it, the event id is its) is
        ``quoted``, so our headers stay small whatever the record held.
        """
        ours = {
            "x-dlq-reason": self.reason,
            "x-error-class": quoted(self.error_class),
            "x-error-message": quoted(self.error_message),
            "x-original-topic": self.original_topic or "",
            "x-original-partition": ""
            if self.original_partition is None
            else str(self.original_partition),
            "x-original-offset": "" if self.original_offset is None else str(self.original_offset),
            "x-event-id": quoted(self.event_id or ""),
            "x-attempts": str(self.attempts),
            "x-replay-count": str(max(self.replay_count, self._replays_so_far())),
            "x-failed-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self.omitted is not None:
            ours["x-dlq-omitted"] = self.omitted
        kept = [(k, v) for k, v in self.headers if k not in ours]
        return kept + [(k, v.encode()) for k, v in ours.items()]

    def without_original(self) -> DeadLetter:
        """This letter without the original key, value and headers, for a record too
        large to be dead-lettered whole (ours add to it).  ``x-dlq-omitted`` gives their
        sizes; the record itself stays at ``x-original-topic``/``-partition``/``-offset``
        for as long as that topic retains it."""
        sizes = (
            f"key {len(self.key or b'')} bytes, value {len(self.value or b'')} bytes, "
            f"{len(self.headers)} headers: too large to dead-letter whole"
        )
        return dataclasses.replace(self, key=None, value=b"", headers=(), omitted=sizes)

    def _replays_so_far(self) -> int:
        """The ``x-replay-count`` the record came with: a replayed record that fails
        again keeps its count."""
        for name, raw in self.headers:
            if name == "x-replay-count":
                try:
                    return max(0, int(raw.decode("ascii", "replace")))
                except ValueError:
                    return 0
        return 0


def reason_of(error: BaseException) -> str:
    """The ``x-dlq-reason`` of ``error``: its class's ``dlq_reason``; an error whose
    class names none ended the work for good, which is ``Unrecoverable``'s."""
    reason = getattr(type(error), "dlq_reason", None)
    return reason if isinstance(reason, str) else Unrecoverable.dlq_reason


def original_value(payload: dict[str, object]) -> bytes:
    """An inbox payload back as the JSON bytes of a Kafka value."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def letter_for(record: Any, error: BaseException, *, event_id: str | None = None) -> DeadLetter:
    """The dead letter of a consumed record: its key, value and headers, and why.

    kafka-python cannot send a record with neither key nor value, nor a header
    whose value is null, though other clients can produce both: such a value is
    sent empty (the ``x-dlq-reason`` header still says what it was).  Text taken
    from the input (the event id, the error message) may hold unpaired surrogates,
    which UTF-8 headers cannot carry: they are escaped.
    """
    value = record.value
    if value is None and record.key is None:
        value = b""
    headers = tuple((k, v if v is not None else b"") for k, v in (record.headers or ()))
    letter = DeadLetter.from_error(
        error,
        key=record.key,
        value=value,
        headers=headers,
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        event_id=None if event_id is None else _header_text(event_id),
    )
    return dataclasses.replace(letter, error_message=_header_text(letter.error_message))


def _header_text(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dlq_topic_for(settings: Settings, original_topic: str | None, kind: str | None = None) -> str:
    """conversation.* -> conversation.dlq, analysis.* -> analysis.dlq."""
    if kind == "analysis" or original_topic == settings.topic_analysis_tasks:
        return settings.topic_analysis_dlq
    return settings.topic_conversation_dlq


def dead_letter(
    producer: KafkaProducer, topic: str, letters: Iterable[DeadLetter], *, timeout_s: float = 10.0
) -> None:
    """Publish dead letters and wait until the broker has them all (before any commit).

    A letter too large for the producer or the broker goes without its original
    (``DeadLetter.without_original``): a record Kafka accepted plus our headers can
    exceed the cap, and retrying it would hold intake for ever.
    """
    with tracing.producing(topic) as span, kafka_errors(f"cannot dead-letter to {topic}"):
        sent = []
        for letter in letters:
            if span.is_recording():
                span.set_attribute("chimera.dlq_reason", letter.reason)
                span.set_attribute("chimera.event_id", quoted(letter.event_id or ""))
            sent.append((letter, _send(producer, topic, letter)))
        for letter, future in sent:
            try:
                future.get(timeout=timeout_s)
            except _TOO_LARGE:  # the broker's cap is below the producer's
                _send(producer, topic, _shrunk(letter, topic)).get(timeout=timeout_s)


def _send(producer: KafkaProducer, topic: str, letter: DeadLetter) -> Any:
    """Send one letter (without its original if the producer refuses its size)."""
    try:
        return _produce(producer, topic, letter)
    except _TOO_LARGE:
        return _produce(producer, topic, _shrunk(letter, topic))


def _produce(producer: KafkaProducer, topic: str, letter: DeadLetter) -> Any:
    # The record's trace context is this span's: its traceparent points into the
    # trace of the event that failed.
    headers = tracing.with_traceparent(letter.record_headers())
    return producer.send(topic, key=letter.key, value=letter.value, headers=headers)


def _shrunk(letter: DeadLetter, topic: str) -> DeadLetter:
    bare = letter.without_original()
    log.warning(
        "dead letter of %s[%s]@%s to %s sent without its original: %s",
        letter.original_topic or "-",
        letter.original_partition,
        letter.original_offset,
        topic,
        bare.omitted,
    )
    return bare
