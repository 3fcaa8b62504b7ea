"""Dead-letter topics: reading their records and replaying them.

Reading assigns every partition by hand (no group join) and reads from the
beginning to the end, so it disturbs no consumer group.

A replay re-publishes a dead letter to its original topic as it was first
produced: the original key, value and headers, without the dead-letter headers,
with ``x-replay-count`` bumped.  Just before, the event's inbox row goes back
from ``dead_lettered`` to ``received``, because the bridge hands a known event
off again only in that state.  An event that is done, or still in flight, is
not replayed, so replaying never duplicates an effect.

Which records a run considers:

* Without filters, those past the offsets committed by the replay group
  (``<KAFKA_CONSUMER_GROUP_ID>-dlq-replay``; the bridge's group is never
  touched).  The run commits past every record it dealt with (replayed or
  refused), so the next run starts after them.
* With an event id or a reason, every matching record from the beginning, so
  an old record is still found.  Such a run commits only over an unbroken run
  of dealt-with records from the committed offset: records it did not look at
  stay for the next unfiltered run.

Every run reads the whole topic, because its history decides two things:

* Of the dead letters of one event (same event id and payload), only the
  latest is replayed.  The earlier ones are superseded: a replay that failed
  again left the newer one.
* An event's replay count is the highest ``x-replay-count`` among its dead
  letters, and at least the number of its earlier dead letters.  The cap
  (``settings.dlq_max_replays``) therefore holds even where a dead-lettering
  path does not carry the header forward, and a poison record cannot loop.
"""

from __future__ import annotations

import calendar
import contextlib
import enum
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from chimera.codec import parse_json_object, payload_hash
from chimera.db.engine import make_engine
from chimera.errors import DatabaseUnavailable, InputError, KafkaUnavailable, NotFound
from chimera.inbox import Inbox
from chimera.kafka.clients import make_consumer, make_producer
from chimera.kafka.consuming import commit
from chimera.kafka.dlq import DeadLetter
from chimera.kafka.topics import list_topics
from chimera.settings import Settings, redact_url

log = logging.getLogger(__name__)

#: The replay tool's consumer group is the service's group with this suffix.
REPLAY_GROUP_SUFFIX = "-dlq-replay"

#: The headers dead-lettering adds (DESIGN.md); a replay takes them off again.
LETTER_HEADERS = frozenset(name for name, _ in DeadLetter(None, None, "", "", "").record_headers())
_LETTER_PREFIXES = ("x-dlq-", "x-error-")

#: A read that makes no progress for this long is a Kafka outage.
READ_STALL_TIMEOUT_S = 30.0
#: A poll that finds nothing for this long, at or past the end offsets, ends a read.
IDLE_POLL_MS = 500
#: The broker answers an empty fetch after this long (the default, 500, slows every read).
FETCH_MAX_WAIT_MS = 100
#: How long a replayed record may wait for the broker's ack.
PUBLISH_TIMEOUT_S = 10.0


# --- topics --------------------------------------------------------------------------


def dead_letter_topics(settings: Settings) -> dict[str, str]:
    """The dead-letter topics: role name (``conversation.dlq``) -> configured name."""
    return {
        role: name
        for role, name in settings.topics.items()
        if name in (settings.topic_conversation_dlq, settings.topic_analysis_dlq)
    }


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
    raise NotFound(f"{name!r} is not a dead-letter topic; choose one of {choices}")


def input_topic_for(settings: Settings, dlq_topic: str) -> str:
    """Where a dead letter with no ``x-original-topic`` came from: its kind's input topic."""
    if dlq_topic == settings.topic_analysis_dlq:
        return settings.topic_analysis_tasks
    return settings.topic_conversation_new


def replay_group(settings: Settings) -> str:
    return settings.kafka_consumer_group_id + REPLAY_GROUP_SUFFIX


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
    try:
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
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot read {topic}: {exc}") from exc
    records.sort(key=lambda r: (r.partition, r.offset))
    for r in records:
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    return Scan(topic, tuple(records), ends)


def committed_offsets(consumer: KafkaConsumer, scan: Scan) -> dict[int, int | None]:
    """The consumer's group's committed offset of each partition (None: never committed)."""
    try:
        return {
            p: consumer.committed(TopicPartition(scan.topic, p), timeout_ms=10_000)
            for p in scan.ends
        }
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot read the committed offsets of {scan.topic}: {exc}") from exc


# --- deciding from the topic alone -----------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What a replay selects; with none, every record past the committed offsets."""

    event_id: str | None = None
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.event_id is not None or self.reason is not None

    def match(self, letter: DeadLetterRecord) -> bool:
        return (self.event_id is None or letter.event_id == self.event_id) and (
            self.reason is None or letter.reason == self.reason
        )


@dataclass(frozen=True)
class Candidate:
    """A record a run considers: how often its event was replayed, or why not to."""

    letter: DeadLetterRecord
    #: Replays the event has had so far.
    replays: int
    #: Why not, when the topic alone decides it.
    skip: str | None = None


def _time_order(letter: DeadLetterRecord) -> tuple[int, int, int]:
    return (letter.timestamp_ms, letter.partition, letter.offset)


def plan(
    scan: Scan,
    committed: Mapping[int, int | None],
    filters: Filters,
    max_replays: int,
) -> list[Candidate]:
    """The records a run considers, oldest first, each judged by its event's history."""
    histories: dict[tuple[str, str], list[DeadLetterRecord]] = {}
    for letter in sorted(scan.records, key=_time_order):
        if letter.event_id is not None:
            histories.setdefault((letter.event_id, letter.digest), []).append(letter)
    if filters:
        scope = [r for r in scan.records if filters.match(r)]
    else:
        scope = [r for r in scan.records if r.offset >= (committed.get(r.partition) or 0)]
    candidates: list[Candidate] = []
    for letter in sorted(scope, key=_time_order):
        history = [letter]
        if letter.event_id is not None:
            history = histories[(letter.event_id, letter.digest)]
        latest = history[-1]
        replays = max(len(history) - 1, *(r.replay_count for r in history))
        if latest is not letter:
            why = f"superseded by a later dead letter of the event ({latest.where})"
        elif replays >= max_replays:
            why = (
                f"replayed {replays} time{'s' * (replays != 1)} already; "
                f"the limit is {max_replays} (CHIMERA_DLQ_MAX_REPLAYS)"
            )
        else:
            why = None
        candidates.append(Candidate(letter, replays, why))
    return candidates


def advance(
    scan: Scan, committed: Mapping[int, int | None], dealt_with: set[tuple[int, int]]
) -> dict[int, int]:
    """Per partition, the offset to commit: past the unbroken run of dealt-with records
    from the committed offset (only where that moves it)."""
    by_partition: dict[int, list[DeadLetterRecord]] = {p: [] for p in scan.ends}
    for letter in scan.records:
        by_partition.setdefault(letter.partition, []).append(letter)
    out: dict[int, int] = {}
    for partition, letters in by_partition.items():
        start = committed.get(partition) or 0
        position = start
        for letter in letters:
            if letter.offset < start:
                continue
            if (partition, letter.offset) not in dealt_with:
                break
            position = letter.offset + 1
        else:
            position = max(position, scan.ends.get(partition, position))
        if position > start:
            out[partition] = position
    return out


# --- replaying ---------------------------------------------------------------------------------


class Action(enum.StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    letter: DeadLetterRecord
    action: Action
    #: Why it was skipped, or where it went.
    detail: str
    #: The ``x-replay-count`` the re-published record carries.
    replay_count: int | None = None

    def cells(self) -> tuple[str, str, str, str]:
        """What happened, to which event, where its dead letter sits, and why or whither."""
        return (self.action.value, self.letter.event_id or "-", self.letter.where, self.detail)


@dataclass
class ReplayReport:
    topic: str
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    #: Records considered but not looked at, because the limit was reached.
    left: int = 0
    #: Partition -> offset committed by this run.
    committed: dict[int, int] = field(default_factory=dict)

    @property
    def replayed(self) -> int:
        return sum(o.action is not Action.SKIPPED for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.action is Action.SKIPPED for o in self.outcomes)

    def summary(self) -> str:
        if self.dry_run:
            text = f"{self.topic}: would replay {self.replayed}, skip {self.skipped}"
        else:
            text = f"{self.topic}: replayed {self.replayed}, skipped {self.skipped}"
        if self.left:
            text += f"; {self.left} more left by the limit"
        if self.dry_run:
            text += " (dry run: nothing was published, reset or committed)"
        return text


class Replayer:
    """Replays the dead letters of one topic with the resources it is given.

    ``consumer`` must belong to the replay group (it reads and commits);
    ``producer`` may be None for a dry run.  ``topics`` are the cluster's topics,
    to refuse a record whose original topic is gone.
    """

    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        consumer: KafkaConsumer,
        producer: KafkaProducer | None,
        topics: frozenset[str],
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._consumer = consumer
        self._producer = producer
        self._topics = topics

    def run(
        self,
        topic: str,
        *,
        filters: Filters | None = None,
        limit: int | None = None,
        dry_run: bool = False,
    ) -> ReplayReport:
        """Replay up to ``limit`` records of ``topic``; commit what was dealt with."""
        if not dry_run and self._producer is None:
            raise ValueError("a replay that is not a dry run needs a producer")
        filters = filters or Filters()
        scan = read_dead_letters(self._consumer, topic)
        committed = committed_offsets(self._consumer, scan)
        candidates = plan(scan, committed, filters, self._settings.dlq_max_replays)
        report = ReplayReport(topic, dry_run)
        for n, candidate in enumerate(candidates):
            if limit is not None and report.replayed >= limit:
                report.left = len(candidates) - n
                break
            report.outcomes.append(self._one(candidate, dry_run=dry_run))
        if not dry_run:
            dealt_with = {(o.letter.partition, o.letter.offset) for o in report.outcomes}
            report.committed = advance(scan, committed, dealt_with)
            commit(
                self._consumer,
                {
                    TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                    for p, o in report.committed.items()
                },
            )
        return report

    def _one(self, candidate: Candidate, *, dry_run: bool) -> Outcome:
        letter = candidate.letter
        target = letter.original_topic or input_topic_for(self._settings, letter.topic)
        refusal, reset = self._refusal(candidate, target), False
        if refusal is None:
            refusal, reset = self._inbox_verdict(letter)
        if refusal is not None:
            return Outcome(letter, Action.SKIPPED, refusal)
        count = candidate.replays + 1
        detail = f"-> {target} (replay {count} of {self._settings.dlq_max_replays})"
        if dry_run:
            return Outcome(letter, Action.WOULD_REPLAY, detail, count)
        # Reset before publishing: a bridge that saw the record first would find the
        # event still dead-lettered and drop it as a duplicate.
        if reset and not self._inbox.reset(str(letter.event_id), payload_hash=letter.digest):
            return Outcome(letter, Action.SKIPPED, "the event left dead_lettered meanwhile")
        self._publish(letter, target, count)
        log.info(
            "event %s replayed from %s to %s (replay %d)",
            letter.event_id,
            letter.where,
            target,
            count,
        )
        return Outcome(letter, Action.REPLAYED, detail + ("; inbox reset" if reset else ""), count)

    def _refusal(self, candidate: Candidate, target: str) -> str | None:
        """Why the record cannot go, as far as Kafka is concerned (None: it can)."""
        if candidate.skip is not None:
            return candidate.skip
        if target not in self._topics:
            return f"its original topic {target} does not exist"
        if candidate.letter.key is None and candidate.letter.value is None:
            return "it has neither key nor value to publish"
        return None

    def _inbox_verdict(self, letter: DeadLetterRecord) -> tuple[str | None, bool]:
        """(why not, or None; whether the event's inbox row must be reset first)."""
        if letter.event_id is None:
            return None, False
        event = self._inbox.get(letter.event_id)
        if event is None:  # it never reached the inbox (bad input): nothing to reset
            return None, False
        if event.payload_hash != letter.digest:
            return (
                "the event was recorded with another payload "
                "(a conflicting duplicate: it would be dead-lettered again)"
            ), False
        if event.status == "done":
            return "the event is done", False
        if event.status != "dead_lettered":
            return f"the event is {event.status} (in flight), not dead-lettered", False
        return None, True

    def _publish(self, letter: DeadLetterRecord, topic: str, count: int) -> None:
        assert self._producer is not None
        try:
            self._producer.send(
                topic, key=letter.key, value=letter.value, headers=letter.replay_headers(count)
            ).get(timeout=PUBLISH_TIMEOUT_S)
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"cannot replay {letter.where} to {topic}: {exc}", event_id=letter.event_id
            ) from exc


# --- entry points ---------------------------------------------------------------------------------


def list_dead_letters(settings: Settings, topic: str) -> Scan:
    """Every record of the dead-letter topic ``topic``, read without joining a group."""
    existing_topics(settings, topic)
    consumer = make_consumer(settings, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    try:
        return read_dead_letters(consumer, topic)
    finally:
        consumer.close()


def replay(
    settings: Settings,
    topic: str,
    *,
    filters: Filters | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    engine: Engine | None = None,
) -> ReplayReport:
    """Replay the dead letters of ``topic`` (see the module docstring for which)."""
    topics = existing_topics(settings, topic)
    with contextlib.ExitStack() as stack:
        if engine is None:
            engine = make_engine(settings)
            stack.callback(engine.dispose)
        check_database(settings, engine)
        consumer = make_consumer(
            settings, group_id=replay_group(settings), fetch_max_wait_ms=FETCH_MAX_WAIT_MS
        )
        stack.callback(consumer.close)
        producer = None
        if not dry_run:
            producer = make_producer(settings)
            stack.callback(producer.close, timeout=5)
        replayer = Replayer(settings, Inbox(engine), consumer, producer, topics)
        report = replayer.run(topic, filters=filters, limit=limit, dry_run=dry_run)
    return report


def check_database(settings: Settings, engine: Engine) -> None:
    """Fail early, in one line, when Postgres cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        url = redact_url(settings.database_url.get_secret_value())
        raise DatabaseUnavailable(f"cannot reach Postgres at {url}: {detail}") from exc
