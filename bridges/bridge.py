"""The bridge process: resources, the consumer loop, commits and flow control.

Lifecycle (arq's worker shape): ``startup`` opens every resource, ``loop`` runs
until ``stop`` is requested, ``shutdown`` commits what is done, leaves the
group, closes everything and logs one summary line.

Each poll's records are decoded and recorded in the inbox together, in one
transaction (``RecordProcessor.prepare``); then each is handed off or
dead-lettered in order, and the hand-offs are marked dispatched together.

Commit rule: a partition's offset is committed only up to the last record
``RecordProcessor`` finished (recorded + handed off, or dead-lettered), once per
poll, and always before the next poll, so a rebalance (which happens inside
``poll``) never finds finished-but-uncommitted work.  When a record cannot be
finished because a dependency is down, every partition of the batch is sought
back to its first unfinished record, intake pauses (the partitions stay
assigned and ``poll`` keeps running, so the group keeps the member) and the
record is retried after a back-off.  The same pause serves backpressure.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery
from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from bridges.backpressure import Backpressure, queue_depth
from bridges.options import BridgeOptions
from bridges.outage import Outage
from bridges.records import Batch, Outcome, RecordProcessor, kinds_by_topic
from bridges.stats import Stats
from chimera import heartbeat
from chimera.db.engine import make_engine
from chimera.errors import ChimeraError, KafkaUnavailable
from chimera.events.inbox import Inbox
from chimera.kafka import consuming
from chimera.kafka.clients import make_consumer, make_producer
from chimera.redis_client import make_redis
from chimera.settings import Settings
from tasks.app import create_app

log = logging.getLogger(__name__)
T = TypeVar("T")
HANDED_OFF = (Outcome.HANDED_OFF, Outcome.HANDED_OFF_AGAIN)


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


def celery_app(settings: Settings) -> Celery:
    """The Celery app hand-offs are sent with (results ignored: see tasks.handoff)."""
    app = create_app()
    # celeryconfig copies the process's settings; a bridge given other settings
    # (tests, an embedding) sends to the queue those name.
    app.conf.task_default_queue = settings.celery_queue
    return app


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's IO loop, inside ``poll``: keep it short, no I/O."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            log.info("partitions revoked: %s", ", ".join(sorted(map(_name, revoked))))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", ", ".join(sorted(map(_name, assigned))) or "none")
        # Offsets we could not commit for a partition now elsewhere must not be
        # committed later over its new owner's progress.
        self._bridge._forget_except(set(assigned))


class Bridge:
    """Consumes the input topics and hands each event to Celery."""

    def __init__(
        self,
        settings: Settings,
        *,
        options: BridgeOptions | None = None,
        stop: threading.Event | None = None,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or BridgeOptions.from_settings(settings)
        self.stop_event = stop or threading.Event()
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        self.backpressure = Backpressure(
            self.options.queue_high_water, self.options.queue_low_water
        )
        self._outage = Outage(base_s=self.options.retry_base_s, cap_s=self.options.retry_cap_s)
        # Heartbeats and depth checks only report an outage; they never hold intake.
        self._side_outage = Outage(
            base_s=self.options.retry_base_s, cap_s=self.options.retry_cap_s, effect="continuing"
        )
        self._retry_at = 0.0
        self._pending: dict[TopicPartition, Any] = {}
        self._last_offsets: dict[TopicPartition, int] = {}
        self._sent_since_check = 0
        self._next_depth_check = 0.0
        self._next_beat = 0.0
        self._resources: list[tuple[str, Callable[[], object]]] = []
        self._consumer: Any = None
        self._stop_reason = "stop requested"

    # --- lifecycle -----------------------------------------------------------------

    def run(self) -> Stats:
        """Start up, consume until stopped, shut down; return what was done."""
        try:
            if self.startup():
                self.loop()
        finally:
            self.shutdown()
        return self.stats

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop after the record in flight (safe from signal handlers)."""
        self._stop_reason = reason
        self.stop_event.set()

    def startup(self) -> bool:
        """Open every resource; False if stopped before Kafka could be reached."""
        s = self.settings
        self._redis = self._open("redis", lambda: make_redis(s), lambda r: r.close())
        engine = self._open("postgres", lambda: make_engine(s), lambda e: e.dispose())
        self._app = self._open("celery", lambda: celery_app(s), lambda a: a.close())
        producer = self._retrying("the Kafka producer", lambda: make_producer(s))
        if producer is None:
            return False
        self._open("producer", lambda: producer, lambda p: p.close(timeout=10))
        consumer = self._retrying(
            "the Kafka consumer",
            lambda: make_consumer(
                s,
                group_id=s.kafka_consumer_group_id,
                fetch_max_wait_ms=self.options.fetch_max_wait_ms,
            ),
        )
        if consumer is None:
            return False
        self._consumer = self._open("consumer", lambda: consumer, self._close_consumer)
        self._processor = RecordProcessor(s, Inbox(engine), producer, self._app)
        topics = sorted(kinds_by_topic(s))
        consumer.subscribe(topics, listener=_Rebalance(self))
        log.info(
            "bridge %s started: group %s, topics %s, Celery queue %s",
            self.instance,
            s.kafka_consumer_group_id,
            ", ".join(topics),
            self._app.conf.task_default_queue,
        )
        return True

    def shutdown(self) -> None:
        """Commit finished work, leave the group, close everything, log one summary line."""
        if self._consumer is not None:
            self._commit()
        for name, close in reversed(self._resources):
            try:
                close()
            except Exception:
                log.exception("closing the %s failed", name)
        self._resources.clear()
        self._consumer = None
        log.info("bridge %s stopped: %s", self.instance, self.stats.summary())

    def _open(self, name: str, make: Callable[[], T], close: Callable[[T], object]) -> T:
        resource = make()
        self._resources.append((name, lambda: close(resource)))
        return resource

    def _retrying(self, what: str, make: Callable[[], T]) -> T | None:
        """``make()`` until it works or the bridge is stopped (never a crash loop)."""
        while not self.stop_event.is_set():
            try:
                made = make()
            except KafkaUnavailable as exc:
                delay = self._outage.failed(exc, f"starting {what}")
                self.stats.errors += 1
                self.stop_event.wait(delay)
                continue
            self._outage.recovered()
            return made
        return None

    def _close_consumer(self, consumer: Any) -> None:
        consumer.close(autocommit=False)  # leaves the group: its partitions move at once

    # --- the loop ------------------------------------------------------------------

    def loop(self) -> None:
        while not self.stop_event.is_set():
            now = time.monotonic()
            self._maybe_beat(now)
            if not self._commit():
                continue
            self._flow_control(now)
            try:
                batch = consuming.poll(self._consumer, self._poll_timeout_ms(now))
            except KafkaUnavailable as exc:
                self._failed(exc, "poll", wait=True)
                continue
            self._outage.recovered("Kafka")
            if batch:
                self._process(batch)
        log.info("%s: intake stopped; committing and leaving the group", self._stop_reason)
        self._maybe_beat(time.monotonic(), force=True)

    def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Record the batch in the inbox at once, then finish each partition's records in
        order; on a failure, rewind what is unfinished."""
        items = list(batch.items())
        try:
            prepared = self._processor.prepare([r for _, records in items for r in records])
        except Exception as exc:  # ServiceUnavailable, or a bug: nothing was done; read again
            for tp, records in items:
                consuming.rewind(self._consumer, tp, records[0].offset)
            self._failed(exc, f"a batch of {sum(len(r) for _, r in items)} records")
            return
        try:
            with self._processor.publishing(prepared):
                self._finish(items, prepared)
        except Exception as exc:  # no producer to be had: read the batch again
            for tp, records in items:
                consuming.rewind(self._consumer, tp, records[0].offset)
            self._failed(exc, "the Celery producer")
        finally:
            self._processor.settle(prepared)

    def _finish(self, items: list[tuple[TopicPartition, list[Any]]], prepared: Batch) -> None:
        for index, (tp, records) in enumerate(items):
            for record in records:
                if self.stop_event.is_set():
                    return  # nothing after the record in flight; nothing unfinished committed
                try:
                    result = self._processor.finish(record, prepared)
                except Exception as exc:  # ServiceUnavailable, or a bug: retry, never skip
                    consuming.rewind(self._consumer, tp, record.offset)
                    for later_tp, later in items[index + 1 :]:
                        consuming.rewind(self._consumer, later_tp, later[0].offset)
                    context = f"event at {_name(tp)}@{record.offset}"
                    if isinstance(exc, ChimeraError) and exc.ids.get("event_id"):
                        context = f"event {exc.ids['event_id']}"
                    self._failed(exc, context)
                    return
                self._pending[tp] = consuming.next_offset(record)
                self._last_offsets[tp] = record.offset
                self.stats.add(result)
                if result.outcome in HANDED_OFF:
                    self._sent_since_check += 1
                self._outage.recovered()

    def _commit(self) -> bool:
        """Commit finished offsets; False (and back off) if Kafka cannot take them."""
        if not self._pending:
            return True
        offsets = dict(self._pending)
        try:
            consuming.commit(self._consumer, offsets)
        except KafkaUnavailable as exc:
            self._failed(exc, "commit", wait=True)
            return False
        # Committed, or refused after a rebalance (the new owner re-reads): done either way.
        for tp, offset in offsets.items():
            if self._pending.get(tp) is offset:
                del self._pending[tp]
        self._outage.recovered("Kafka")
        return True

    def _forget_except(self, assigned: set[TopicPartition]) -> None:
        self._pending = {tp: om for tp, om in self._pending.items() if tp in assigned}

    def _failed(self, exc: BaseException, context: str, *, wait: bool = False) -> None:
        """Back off after a transient failure: paused intake, or (Kafka itself) a plain wait."""
        self.stats.errors += 1
        delay = self._outage.failed(exc, context)
        self._retry_at = time.monotonic() + delay
        if wait:
            self.stop_event.wait(delay)

    # --- flow control --------------------------------------------------------------

    def _flow_control(self, now: float) -> None:
        """Pause every assigned partition while backing off or above the high-water mark."""
        if now >= self._next_depth_check or self._sent_since_check:
            self._check_depth(now)
        consumer = self._consumer
        hold = now < self._retry_at or self.backpressure.engaged
        assigned = consumer.assignment()
        paused = consumer.paused()
        if hold and assigned - paused:
            consumer.pause(*(assigned - paused))
        elif not hold and paused:
            consumer.resume(*paused)

    def _check_depth(self, now: float) -> None:
        self._next_depth_check = now + self.options.depth_check_interval_s
        self._sent_since_check = 0
        try:
            depth = queue_depth(self._app)
        except ChimeraError as exc:
            # Unknown depth: keep the current state; a hand-off will meet the outage.
            self._side_outage.failed(exc, "reading the Celery queue depth")
            return
        self._side_outage.recovered()
        self.backpressure.update(depth)

    def _poll_timeout_ms(self, now: float) -> int:
        timeout = self.options.poll_timeout_ms
        if now < self._retry_at:
            timeout = min(timeout, max(1, int((self._retry_at - now) * 1000)))
        return timeout

    # --- heartbeat -----------------------------------------------------------------

    @property
    def assignment(self) -> set[TopicPartition]:
        """The partitions this bridge consumes now (none before it joined its group)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    @property
    def state(self) -> str:
        if self._outage.dependency:
            return f"waiting for {self._outage.dependency}"
        if self.backpressure.engaged:
            return "paused (backpressure)"
        return "running"

    def _maybe_beat(self, now: float, *, force: bool = False) -> None:
        if now < self._next_beat and not force:
            return
        interval = self.options.heartbeat_interval_s
        self._next_beat = now + interval
        consumer = self._consumer
        info = {
            "state": self.state,
            "group": self.settings.kafka_consumer_group_id,
            "assigned": sorted(map(_name, self.assignment)),
            "paused": sorted(map(_name, consumer.paused())),
            "last_offsets": {_name(tp): o for tp, o in sorted(self._last_offsets.items())},
            "queue_depth": self.backpressure.depth,
            **self.stats.as_dict(),
        }
        try:
            heartbeat.beat(
                self._redis,
                self.settings,
                "bridge",
                instance=self.instance,
                ttl_s=interval * 3,
                **info,
            )
        except ChimeraError as exc:
            self._side_outage.failed(exc, "writing the bridge heartbeat")
            return
        self._side_outage.recovered()
