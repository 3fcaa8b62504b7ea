"""Consuming with manual commits: polling and explicit offset commits.

The adapter between a consumer loop and kafka-python: library errors become
Chimera errors here (``chimera.kafka.errors``), and offsets are always committed explicitly
(``OffsetAndMetadata(offset + 1, "", -1)`` per partition), never with a bare
``commit()``, which would commit everything polled (docs/reliability.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from chimera.kafka.errors import kafka_errors

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
    with kafka_errors("cannot poll Kafka"):
        return dict(consumer.poll(timeout_ms=timeout_ms))


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
    with kafka_errors("cannot commit offsets"):
        try:
            consumer.commit(offsets=dict(offsets), timeout_ms=COMMIT_TIMEOUT_MS)
        except _REBALANCED as exc:
            where = ", ".join(
                f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in offsets.items()
            )
            log.warning(
                "commit of %s refused after a rebalance (%s); they will be re-read", where, exc
            )
            return False
    return True
