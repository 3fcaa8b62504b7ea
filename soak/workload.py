"""The event mix and the publisher that sends it at a steady rate.

The mix is drawn from a seeded generator, so a run can be repeated: mostly
conversations with few turns, some analyses of short texts, a share of exact
duplicates (the same record again: it must create nothing new) and a share of
poison records (invalid JSON, schema-invalid, tombstone, unknown version, same
id with another payload).  A poison record's dead letter is found by where the
broker put it (``x-original-topic``, ``-partition``, ``-offset``); its kind is the
``x-dlq-reason`` it should carry, and its header ``soak-poison: <n>`` should be
kept.  A conflicting duplicate goes out under its original's key, so
it lands on the same partition, behind the original.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from chimera.demo import load_samples
from chimera.kafka.clients import make_producer
from chimera.settings import Settings

log = logging.getLogger(__name__)

POISON_HEADER = "soak-poison"
POISON_KINDS = (
    "invalid_json",
    "schema_invalid",
    "tombstone",
    "unsupported_version",
    "conflicting_duplicate",
)


@dataclass(frozen=True)
class Record:
    """One Kafka record to publish."""

    topic: str
    key: str
    value: bytes | None
    kind: str  # "conversation", "analysis", "duplicate" or "poison"
    event_id: str | None = None  # valid events and their duplicates
    poison: str | None = None
    poison_tag: str | None = None  # the ``soak-poison`` header

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [(POISON_HEADER, self.poison_tag.encode())] if self.poison_tag else []


@dataclass(frozen=True)
class Mix:
    events: int
    analysis_share: float = 0.1
    poison_share: float = 0.02
    duplicate_share: float = 0.01
    min_turns: int = 2
    max_turns: int = 4
    seed: int = 7


def plan(settings: Settings, mix: Mix, run_tag: str) -> list[Record]:
    """``mix.events`` records in publishing order."""
    rng = random.Random(mix.seed)  # noqa: S311 - a repeatable mix, not a secret
    topics, texts = load_samples()
    records: list[Record] = []
    valid: list[Record] = []
    poison_n = 0
    for i in range(mix.events):
        draw = rng.random()
        if draw < mix.poison_share:
            records.append(_poison(settings, rng, poison_n, valid))
            poison_n += 1
        elif draw < mix.poison_share + mix.duplicate_share and valid:
            original = rng.choice(valid)
            records.append(
                Record(original.topic, original.key, original.value, "duplicate", original.event_id)
            )
        elif draw < mix.poison_share + mix.duplicate_share + mix.analysis_share:
            text = texts[i % len(texts)]
            event_id = f"soak-{run_tag}-a{i}"
            context_id = f"soak-doc-{run_tag}-{i}"
            body = {"event_id": event_id, "context_id": context_id, "segments": text["segments"]}
            valid.append(
                Record(settings.topic_analysis_tasks, context_id, _json(body), "analysis", event_id)
            )
            records.append(valid[-1])
        else:
            topic = topics[i % len(topics)]
            event_id = f"soak-{run_tag}-c{i}"
            max_turns = rng.randint(mix.min_turns, mix.max_turns)
            body = {
                "event_id": event_id,
                "topic": topic,
                "min_turns": mix.min_turns,
                "max_turns": max_turns,
                "metadata": {"soak": run_tag},
            }
            key = f"soak-{run_tag}-{i}"
            valid.append(
                Record(settings.topic_conversation_new, key, _json(body), "conversation", event_id)
            )
            records.append(valid[-1])
    return records


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _poison(settings: Settings, rng: random.Random, n: int, valid: list[Record]) -> Record:
    kind = POISON_KINDS[n % len(POISON_KINDS)]
    if kind == "conflicting_duplicate" and not valid:
        kind = "invalid_json"
    topic = rng.choice([settings.topic_conversation_new, settings.topic_analysis_tasks])
    tag = key = f"soak-poison-{n}"
    value: bytes | None
    if kind == "invalid_json":
        value = b'{"event_id": "soak-poison", "topic": '
    elif kind == "schema_invalid":
        value = _json({"event_id": f"soak-poison-{n}", "min_turns": "many"})
    elif kind == "tombstone":
        value = None
    elif kind == "unsupported_version":
        value = _json({"event_id": f"soak-poison-{n}", "schema_version": 99, "topic": "x"})
    else:  # the id of an earlier event, another payload
        original = rng.choice(valid)
        body = json.loads(original.value or b"{}")
        # Another payload that is valid on its own: only the repeated id is wrong.
        if original.topic == settings.topic_analysis_tasks:
            body["language"] = "fr" if body.get("language") != "fr" else "de"
        else:
            body["topic"] = f"{body.get('topic', '')} (conflicting {n})"
        return Record(
            original.topic, original.key, _json(body), "poison", original.event_id, kind, tag
        )
    return Record(topic, key, value, "poison", None, kind, tag)


@dataclass
class PublishLog:
    """What was sent (acknowledged by the broker) and what could not be."""

    sent: list[tuple[float, Record]] = field(default_factory=list)
    #: (topic, partition, offset) the broker gave each record sent
    placed: dict[tuple[str, int, int], Record] = field(default_factory=dict)
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.sent)

    def records(self) -> list[Record]:
        with self.lock:
            return [r for _, r in self.sent]

    def placements(self) -> dict[tuple[str, int, int], Record]:
        with self.lock:
            return dict(self.placed)


class Publisher(threading.Thread):
    """Sends the planned records at ``rate_per_s``, one acknowledged record at a time."""

    def __init__(self, settings: Settings, records: list[Record], rate_per_s: float) -> None:
        super().__init__(name="soak-publisher", daemon=True)
        self.settings = settings
        self.records = records
        self.interval_s = 1.0 / rate_per_s
        self.log = PublishLog()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = make_producer(self.settings)
        except Exception as exc:  # reported by the run, which then stops
            self.error = exc
            return
        try:
            self._publish_all(producer)
        except Exception as exc:
            self.error = exc
        finally:
            producer.close(timeout=10)

    def _publish_all(self, producer: KafkaProducer) -> None:
        start = time.monotonic()
        for i, record in enumerate(self.records):
            due = start + i * self.interval_s
            if self.stopping.wait(max(0.0, due - time.monotonic())):
                return
            try:
                meta = producer.send(
                    record.topic,
                    key=record.key.encode(),
                    value=record.value,
                    headers=record.headers,
                ).get(timeout=30)
            except KafkaError as exc:
                log.warning("record %s not published: %s", record.key, exc)
                with self.log.lock:
                    self.log.failed += 1
                continue
            with self.log.lock:
                self.log.sent.append((time.time(), record))
                self.log.placed[(meta.topic, meta.partition, meta.offset)] = record
