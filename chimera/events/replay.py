"""Replaying dead letters (``chimera dlq replay``); reading them is ``letters``.

A replay re-publishes a dead letter to its input topic as it was first
produced: the original key, value and headers, without the dead-letter headers,
with ``x-replay-count`` bumped.  Just before, the event's inbox row goes back
from ``dead_lettered`` to ``received``, because the bridge hands a known event
off again only in that state.  An event that is done, or still in flight, is
not replayed, so replaying never duplicates an effect.

Where a record goes is the route of its dead-letter topic
(``settings.replay_routes``: conversation.dlq -> conversation.new, analysis.dlq ->
analysis.tasks, or ``CHIMERA_DLQ_ROUTES``), never what the record says: whoever can
write to a dead-letter topic writes its headers too.  A record whose
``x-original-topic`` names another topic is refused (reported and counted, never
published), and takes no part in the history of the event it names; a replay
therefore never writes to an output topic or to the other kind's input.  A
topic-queue event's dead letter names the queue (``redis:<key>``), which counts as
`conversation.new`: its events are conversation requests, so it is replayed through
the bridge like any other (``letters.origins_for``).

Which records a run considers, and which of them it replays, is decided from the
topic alone in ``replay_plan``; this module asks the inbox and publishes.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, text

from chimera.db.engine import make_engine
from chimera.db.errors import database_errors
from chimera.events.inbox import EventStatus, Inbox, Source
from chimera.events.letters import (
    FETCH_MAX_WAIT_MS,
    DeadLetterRecord,
    committed_offsets,
    existing_topics,
    input_topic_for,
    origins_for,
    read_dead_letters,
)
from chimera.events.replay_plan import Candidate, Filters, advance, plan
from chimera.kafka.clients import make_consumer, make_producer
from chimera.kafka.consuming import commit
from chimera.kafka.errors import kafka_errors
from chimera.settings import Settings
from chimera.settings_values import redact_url
from chimera.untrusted import clip

log = logging.getLogger(__name__)

#: The replay tool's consumer group is the service's group with this suffix.
REPLAY_GROUP_SUFFIX = "-dlq-replay"
#: How long a replayed record may wait for the broker's ack.
PUBLISH_TIMEOUT_S = 10.0


def replay_group(settings: Settings) -> str:
    return settings.kafka_consumer_group_id + REPLAY_GROUP_SUFFIX


# --- replaying ---------------------------------------------------------------------------------


class Action(enum.StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"
    SKIPPED = "skipped"
    #: Claims another topic than its route's: a forged or misrouted record.
    REFUSED = "refused"


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
        return sum(o.action in (Action.REPLAYED, Action.WOULD_REPLAY) for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.action is Action.SKIPPED for o in self.outcomes)

    @property
    def refused(self) -> int:
        return sum(o.action is Action.REFUSED for o in self.outcomes)

    def summary(self) -> str:
        if self.dry_run:
            text = f"{self.topic}: would replay {self.replayed}, skip {self.skipped}"
        else:
            text = f"{self.topic}: replayed {self.replayed}, skipped {self.skipped}"
        if self.refused:
            verb = "refuse" if self.dry_run else "refused"
            text += f", {verb} {self.refused} claiming another original topic"
        if self.left:
            text += f"; {self.left} more left by the limit"
        if self.dry_run:
            text += " (dry run: nothing was published, reset or committed)"
        return text


class Replayer:
    """Replays the dead letters of one topic with the resources it is given.

    ``consumer`` must belong to the replay group (it reads and commits);
    ``producer`` may be None for a dry run.  ``topics`` are the cluster's topics,
    to refuse a record whose input topic is gone.
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
        route = input_topic_for(self._settings, topic)
        scan = read_dead_letters(self._consumer, topic)
        committed = committed_offsets(self._consumer, scan)
        candidates = plan(
            scan,
            committed,
            filters,
            self._settings.dlq_max_replays,
            route=route,
            also=origins_for(self._settings, topic),
        )
        report = ReplayReport(topic, dry_run)
        for n, candidate in enumerate(candidates):
            if limit is not None and report.replayed >= limit:
                report.left = len(candidates) - n
                break
            report.outcomes.append(self._one(candidate, route, dry_run=dry_run))
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

    def _one(self, candidate: Candidate, target: str, *, dry_run: bool) -> Outcome:
        letter = candidate.letter
        if candidate.refusal is not None:
            log.warning("dead letter %s refused: %s", letter.where, candidate.refusal)
            return Outcome(letter, Action.REFUSED, candidate.refusal)
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
        # The row keeps the replayed record's key and headers: should the event fail
        # again, a worker's dead letter carries this replay's count.
        record = Source(key=letter.key, headers=tuple(letter.replay_headers(count)))
        if reset and not self._inbox.reset(
            str(letter.event_id), payload_hash=letter.digest, record=record
        ):
            return Outcome(letter, Action.SKIPPED, "the event left dead_lettered meanwhile")
        self._publish(letter, target, count)
        log.info(
            "event %s replayed from %s to %s (replay %d)",
            clip(str(letter.event_id)),
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
            return f"its input topic {target} does not exist"
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
        if event.status is EventStatus.DONE:
            return "the event is done", False
        if event.status is not EventStatus.DEAD_LETTERED:
            return f"the event is {event.status} (in flight), not dead-lettered", False
        return None, True

    def _publish(self, letter: DeadLetterRecord, topic: str, count: int) -> None:
        assert self._producer is not None
        with kafka_errors(f"cannot replay {letter.where} to {topic}", event_id=letter.event_id):
            self._producer.send(
                topic, key=letter.key, value=letter.value, headers=letter.replay_headers(count)
            ).get(timeout=PUBLISH_TIMEOUT_S)


# --- entry points ---------------------------------------------------------------------------------


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
    input_topic_for(settings, topic)  # a dead-letter topic, or NotFound before any I/O
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
    url = redact_url(settings.database_url.get_secret_value())
    with database_errors(f"cannot reach Postgres at {url}", brief=True), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
