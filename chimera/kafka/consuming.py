"""Consuming with manual commits: polling, explicit offset commits, dead letters of records.

The adapter between a consumer loop and kafka-python: library errors become
``KafkaUnavailable`` here, and offsets are always committed explicitly
(``OffsetAndMetadata(offset + 1, "", -1)`` per partition), never with a bare
``commit()``, which would commit everything polled (docs/reliability.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from chimera.errors import KafkaUnavailable
from chimera.kafka.dlq import DeadLetter

log = logging.getLogger(__name__)

Records = dict[TopicPartition, list[Any]]
Offsets = dict[TopicPartition, OffsetAndMetadata]

#: A commit that takes longer than this is treated as a Kafka outage.
COMMIT_TIMEOUT_MS = 10_000

#: The group moved on (a rebalance): the partitions' new owner re-reads from the
#: last committed offset, and idempotent processing makes that harmless.
_REBALANCED = (
    CommitFailedError,
    IllegalGenerationError,
    UnknownMemberIdError,
    RebalanceInProgressError,
)


def next_offset(record: Any) -> OffsetAndMetadata:
    """What to commit once ``record`` is done: the offset of the record after it."""
    return OffsetAndMetadata(record.offset + 1, "", -1)


def poll(consumer: KafkaConsumer, timeout_ms: int) -> Records:
    """One poll; an unreachable cluster or a failed rebalance is ``KafkaUnavailable``."""
    try:
        return dict(consumer.poll(timeout_ms=timeout_ms))
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot poll Kafka: {exc}") from exc


def rewind(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> bool:
    """Make the next poll return ``tp`` from ``offset`` again; False if ``tp`` is no longer ours.

    A partition a rebalance took away needs no rewind: its new owner starts at
    the last committed offset, which is never past an unfinished record.
    """
    if tp not in consumer.assignment():
        return False
    consumer.seek(tp, offset)
    return True


def commit(consumer: KafkaConsumer, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> bool:
    """Commit exactly ``offsets``; False when a rebalance made the commit obsolete.

    Raises ``KafkaUnavailable`` when the group coordinator cannot take it.
    """
    if not offsets:
        return True
    try:
        consumer.commit(offsets=dict(offsets), timeout_ms=COMMIT_TIMEOUT_MS)
    except _REBALANCED as exc:
        where = ", ".join(f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in offsets.items())
        log.warning("commit of %s refused after a rebalance (%s); they will be re-read", where, exc)
        return False
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot commit offsets: {exc}") from exc
    return True


def letter_for(
    record: Any,
    exc: BaseException,
    *,
    reason: str | None = None,
    event_id: str | None = None,
) -> DeadLetter:
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
        exc,
        reason=reason,
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
