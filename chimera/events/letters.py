"""Dead-letter topics and their records: which topics they are, reading one whole.

Reading assigns every partition by hand (no group join) and reads from the
beginning to the end, so it disturbs no consumer group.  A record's dead-letter
headers (docs/contract.md) are read into a ``DeadLetterRecord``; ``replay_plan``
decides from them what to re-publish.  Writing them is ``deadletters``.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from chimera.codec import parse_json_object, payload_hash
from chimera.errors import InputError, KafkaUnavailable, NotFound
from chimera.events.deadletters import DeadLetter
from chimera.kafka.clients import make_consumer
from chimera.kafka.errors import kafka_errors
from chimera.kafka.topics import list_topics
from chimera.settings import Settings
from chimera.untrusted import clip

#: The headers dead-lettering adds (docs/contract.md); a replay takes them off again.
LETTER_HEADERS = frozenset(name for name, _ in DeadLetter(None, None, "", "", "").record_headers())
_LETTER_PREFIXES = ("x-dlq-", "x-error-")

#: A read that makes no progress for this long is a Kafka outage.
READ_STALL_TIMEOUT_S = 30.0
#: A poll that finds nothing for this long, at or past the end offsets, ends a read.
IDLE_POLL_MS = 500
#: The broker answers an empty fetch after this long (the default, 500, slows every read).
FETCH_MAX_WAIT_MS = 100


# --- topics --------------------------------------------------------------------------


def dead_letter_topics(settings: Settings) -> dict[str, str]:
    """The dead-letter topics: role name (``conversation.dlq``) -> configured name, and
    every other topic ``CHIMERA_DLQ_ROUTES`` routes, under its own name.

    A configured input or output topic is never one (the settings refuse such a route):
    replaying from it would copy one kind's events into another's input.
    """
    dlqs = (settings.topic_conversation_dlq, settings.topic_analysis_dlq)
    roles = {role: name for role, name in settings.topics.items() if name in dlqs}
    others = set(settings.topics.values())
    routed = {name: name for name in settings.replay_routes if name not in others}
    return routed | roles


def resolve_topic(settings: Settings, name: str) -> str:
    """The configured dead-letter topic ``name`` stands for (its role or its own name)."""
    topics = dead_letter_topics(settings)
    if name in topics:
        return topics[name]
    if name in topics.values():
        return name
    choices = ", ".join(
        f"{role} ({real})" if role != real else role for role, real in topics.items()
    )
    raise NotFound(f"{clip(name)!r} is not a dead-letter topic; choose one of {choices}")


def input_topic_for(settings: Settings, dlq_topic: str) -> str:
    """The one input topic the records of ``dlq_topic`` are replayed to (its route), or
    ``NotFound`` when ``dlq_topic`` is not a dead-letter topic."""
    if dlq_topic not in dead_letter_topics(settings).values():
        raise NotFound(f"{clip(dlq_topic)!r} is not a dead-letter topic")
    return settings.replay_routes[dlq_topic]


#: A source that is a Redis list, not a Kafka topic, begins so.
QUEUE_SOURCE_PREFIX = "redis:"


def queue_source(queue_key: str) -> str:
    """The source an event of the Redis topic queue ``queue_key`` is recorded with (the
    inbox's ``source_topic``), which its dead letter's ``x-original-topic`` repeats."""
    return f"{QUEUE_SOURCE_PREFIX}{queue_key}"


def origins_for(settings: Settings, dlq_topic: str) -> frozenset[str]:
    """The origins besides its route that the records of ``dlq_topic`` may claim: for the
    route to `conversation.new`, the topic queue (its events are conversation requests,
    replayed through the bridge like any other); none otherwise."""
    if input_topic_for(settings, dlq_topic) == settings.topic_conversation_new:
        return frozenset({queue_source(settings.topics_queue_key)})
    return frozenset()


def existing_topics(settings: Settings, topic: str) -> frozenset[str]:
    """The cluster's topics, once ``topic`` is known to be among them.

    Asked of the admin client first: it fails within seconds when Kafka is
    unreachable, where a consumer would wait for its full request timeout.
    """
    topics = frozenset(list_topics(settings))
    if topic not in topics:
        raise NotFound(
            f"topic {topic} does not exist on {settings.kafka_bootstrap_servers} "
            "(`chimera kafka create-topics` creates the configured topics)"
        )
    return topics


# --- one dead letter ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of a dead-letter topic, with its dead-letter headers read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    event_id: str | None = None
    reason: str = "unknown"
    error_class: str = "-"
    error_message: str = ""
    attempts: int | None = None
    replay_count: int = 0
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    #: When it was dead-lettered (epoch seconds): ``x-failed-at``, else the record's time.
    failed_at: float = 0.0
    #: ``x-dlq-omitted``: the original was too large to dead-letter whole, so this record
    #: carries none of it (it is read at ``x-original-*`` while that topic keeps it).
    omitted: str | None = None
    #: Identifies the payload: the inbox's payload hash when the value is a JSON
    #: object (so it compares with the recorded event), else a hash of the bytes.
    digest: str = ""

    @classmethod
    def from_record(cls, record: Any) -> DeadLetterRecord:
        """From a consumed record; null header values become empty."""
        headers = tuple((k, v if v is not None else b"") for k, v in (record.headers or ()))

        def header(name: str) -> str | None:
            return _text(headers, name) or None

        payload = _json_object(record.value)
        event_id = header("x-event-id")
        if event_id is None and payload is not None and isinstance(payload.get("event_id"), str):
            event_id = payload["event_id"] or None
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=headers,
            event_id=event_id,
            reason=header("x-dlq-reason") or "unknown",
            error_class=header("x-error-class") or "-",
            error_message=header("x-error-message") or "",
            attempts=_int(header("x-attempts")),
            replay_count=_int(header("x-replay-count")) or 0,
            original_topic=header("x-original-topic"),
            original_partition=_int(header("x-original-partition")),
            original_offset=_int(header("x-original-offset")),
            failed_at=_epoch(header("x-failed-at")) or record.timestamp / 1000,
            omitted=header("x-dlq-omitted"),
            digest=_digest(record.value, payload),
        )

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def origin(self) -> str:
        if self.original_topic is None:
            return "-"
        partition = "?" if self.original_partition is None else self.original_partition
        offset = "?" if self.original_offset is None else self.original_offset
        return f"{self.original_topic}[{partition}]@{offset}"

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.failed_at)

    def replay_headers(self, replay_count: int) -> list[tuple[str, bytes]]:
        """The original headers, without the dead-letter ones, and the new replay count."""
        kept = [
            (k, v)
            for k, v in self.headers
            if k not in LETTER_HEADERS and not k.startswith(_LETTER_PREFIXES)
        ]
        return [*kept, ("x-replay-count", str(replay_count).encode())]

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        """A JSON-able view: key, value and headers as text."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _BINARY}
        return plain | {
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.failed_at)),
            "age_s": round(self.age_s(now), 1),
            "key": _decoded(self.key),
            "value": _decoded(self.value),
            "headers": [[k, _decoded(v)] for k, v in self.headers],
        }


_BINARY = frozenset({"key", "value", "headers", "digest"})


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _text(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    """The last value of header ``name``, as text."""
    for k, v in reversed(headers):
        if k == name:
            return v.decode("utf-8", "replace")
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _decoded(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        return parse_json_object(raw, max_bytes=max(len(raw), 1))
    except InputError:
        return None


def _digest(raw: bytes | None, payload: dict[str, Any] | None) -> str:
    if payload is not None:
        return payload_hash(payload)
    return "raw:" + hashlib.sha256(raw or b"").hexdigest()


# --- reading a topic ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """A dead-letter topic as read from the beginning to its end."""

    topic: str
    #: By partition, then offset.
    records: tuple[DeadLetterRecord, ...]
    #: Partition -> the offset after the last record read (at least the end
    #: offset the broker reported when the read began).
    ends: Mapping[int, int]


def read_dead_letters(
    consumer: KafkaConsumer, topic: str, *, stall_timeout_s: float = READ_STALL_TIMEOUT_S
) -> Scan:
    """Every record of ``topic``, from the beginning to its end, by manual assignment.

    The end is the end offsets taken at the start, and past them while polls
    still find records: Tansu reports a partition's end as one past the first
    record of its last batch, short of the truth.
    """
    with kafka_errors(f"cannot read {topic}"):
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        ends: dict[int, int] = {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
        consumer.seek_to_beginning(*tps)
        records: list[DeadLetterRecord] = []
        deadline = time.monotonic() + stall_timeout_s
        while True:
            polled = consumer.poll(timeout_ms=IDLE_POLL_MS)
            for batch in polled.values():
                records += [DeadLetterRecord.from_record(r) for r in batch]
            if polled:
                deadline = time.monotonic() + stall_timeout_s
            elif all(consumer.position(tp) >= ends[tp.partition] for tp in tps):
                break
            elif time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading {topic} made no progress in {stall_timeout_s}s")
    records.sort(key=lambda r: (r.partition, r.offset))
    for r in records:
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    return Scan(topic, tuple(records), ends)


def committed_offsets(consumer: KafkaConsumer, scan: Scan) -> dict[int, int | None]:
    """The consumer's group's committed offset of each partition (None: never committed)."""
    with kafka_errors(f"cannot read the committed offsets of {scan.topic}"):
        return {
            p: consumer.committed(TopicPartition(scan.topic, p), timeout_ms=10_000)
            for p in scan.ends
        }


def list_dead_letters(settings: Settings, topic: str) -> Scan:
    """Every record of the dead-letter topic ``topic``, read without joining a group."""
    existing_topics(settings, topic)
    consumer = make_consumer(settings, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    try:
        return read_dead_letters(consumer, topic)
    finally:
        consumer.close()
