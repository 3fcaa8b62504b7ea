"""What the soak's Kafka topics hold at the end: dead letters matched to the poison
records that caused them, and completion messages per input event."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from kafka import TopicPartition

from chimera.kafka.clients import make_consumer
from chimera.settings import Settings
from soak.workload import POISON_HEADER, Record


def sample_ids(ids: Iterable[Any], n: int = 10) -> dict[str, Any]:
    ids = list(ids)
    return {"count": len(ids), "first": [str(i) for i in ids[:n]]}


def _read_topics(settings: Settings, topics: list[str]) -> list[Any]:
    consumer = make_consumer(settings, fetch_max_wait_ms=200)
    try:
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or [])
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        idle = 0
        while idle < 3:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            got = [r for rs in batch.values() for r in rs]
            records += got
            idle = 0 if got else idle + 1
        return records
    finally:
        consumer.close()


def _header(record: Any, name: str) -> str:
    for key, value in record.headers or []:
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""


def dead_letters(
    settings: Settings,
    placed: dict[tuple[str, int, int], Record],
    poison: list[Record],
    inbox: dict[str, Any],
) -> dict[str, Any]:
    """Poison records are matched to their dead letters by where the broker put them."""
    records = _read_topics(settings, [settings.topic_conversation_dlq, settings.topic_analysis_dlq])
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    letters: Counter[str] = Counter()
    wrong: list[str] = []
    headers_lost = 0
    event_ids: Counter[str] = Counter()
    for r in records:
        reason = _header(r, "x-dlq-reason")
        reasons[r.topic][reason] += 1
        where = (
            _header(r, "x-original-topic"),
            _int(_header(r, "x-original-partition")),
            _int(_header(r, "x-original-offset")),
        )
        original = placed.get(where)
        if original is not None and original.kind == "poison":
            tag = original.poison_tag or ""
            letters[tag] += 1
            if reason != original.poison:
                wrong.append(f"{tag}: {reason} (expected {original.poison})")
            if _header(r, POISON_HEADER) != tag:
                headers_lost += 1
        else:
            event_ids[_header(r, "x-event-id")] += 1
    missing = [p.poison_tag for p in poison if p.poison_tag not in letters]
    done_but_dlq = [e for e in event_ids if e in inbox and inbox[e].status == "done"]
    dead_not_in_dlq = [
        e for e, row in inbox.items() if row.status == "dead_lettered" and e not in event_ids
    ]
    return {
        "dlq_records": {t: dict(c) for t, c in reasons.items()},
        "poison": {
            "published": len(poison),
            "dead_lettered": len(poison) - len(missing),
            "missing": missing[:10],
            "missing_count": len(missing),
            "wrong_reason": wrong[:10],
            "repeated": sum(n - 1 for n in letters.values() if n > 1),
            "original_headers_lost": headers_lost,
        },
        "valid_events_in_dlq": len(event_ids),
        "valid_events_repeated_in_dlq": sum(n - 1 for n in event_ids.values() if n > 1),
        "done_but_in_dlq": sample_ids(done_but_dlq),
        "dead_lettered_not_in_dlq": sample_ids(dead_not_in_dlq),
    }


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def output_counts(settings: Settings) -> dict[str, Any]:
    """Completion messages per input event (more than one: published again)."""
    out: dict[str, Any] = {}
    for topic in (settings.topic_conversation_completed, settings.topic_analysis_completed):
        per_event: Counter[str] = Counter()
        types: Counter[str] = Counter()
        for r in _read_topics(settings, [topic]):
            try:
                body = json.loads(r.value)
            except (TypeError, ValueError):
                continue
            per_event[str(body.get("source_event_id") or body.get("conversation_id"))] += 1
            types[str(body.get("event_type"))] += 1
        out[topic] = {
            "messages": sum(per_event.values()),
            "events": len(per_event),
            "by_type": dict(types),
            "events_with_more_than_one": sum(1 for n in per_event.values() if n > 1),
        }
    return out
