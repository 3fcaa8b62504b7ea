"""Every poison class through the real bridge, in one stream: dead-lettered, committed, passed.

One bridge run consumes a table of bad records (on both input topics) interleaved
with good ones.  Each bad record must land on its DLQ topic with the contract's headers
and the reason of its class, write nothing (no inbox row, no hand-off, no
conversation or run), and never hold up the good records after it; every offset
ends committed and the bridge counts no outage.

Then records built to cost time, memory or record size, through the bridge process
at the default 1 MiB limit; metadata over its bound with a worker ready to pay for
it; and output events too large for one record.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bridges.bridge import Bridge
from bridges.options import BridgeOptions
from chimera import defaults as d
from chimera.db.tables import Event, LLMCall
from chimera.events.deadletters import MARKER_ROOM
from chimera.events.ids import conversation_id, handoff_task_id
from chimera.events.sink import KafkaEventSink
from chimera.kafka.clients import make_producer
from chimera.models import AnalysisCompleted, ConversationCompleted, TranscriptTurn
from chimera.settings import Settings
from tests.bridges.conftest import (
    CELERYCONFIG_DEPRECATION,
    RunningBridge,
    broker_redis,
    committed,
    end_offsets,
    queue_keys,
    queued,
    read_topic,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

#: The event-size limit of this run (the smallest the settings allow is 1,024).
MAX_EVENT_BYTES = 16_384
#: The metadata bound of this run (CHIMERA_MAX_OUTPUT_METADATA_BYTES).
MAX_METADATA_BYTES = 1_024
#: The longest an x-* header we add may be: the quote bound, room for the marker of text
#: cut before, and the marker.
MAX_HEADER_CHARS = d.MAX_QUOTED_CHARS + MARKER_ROOM + len("…[1048576 more chars]")

DLQ_HEADERS = (
    "x-dlq-reason",
    "x-error-class",
    "x-error-message",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
    "x-event-id",
    "x-attempts",
    "x-replay-count",
    "x-failed-at",
)
#: Every reason an input can be dead-lettered with by the bridge (docs/contract.md).
BRIDGE_REASONS = {
    "tombstone",
    "undecodable",
    "invalid_json",
    "schema_invalid",
    "unsupported_version",
    "too_large",
    "conflicting_duplicate",
}


@dataclass(frozen=True)
class Poison:
    """One bad record and what its dead letter must say."""

    name: str
    value: Any  # bytes, None, or a JSON-able object
    reason: str
    error_class: str
    event_id: str = ""
    kind: str = "conversation"
    key: bytes | None = b"poison"
    headers: tuple[tuple[str, bytes], ...] = (("h", b"v"),)
    #: Text the x-error-message must contain (the field or problem named).
    mentions: tuple[str, ...] = ()


def nested(depth: int) -> bytes:
    return (
        b'{"event_id": "deep", "topic": "t", "metadata": {"k": '
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )


def conv(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "topic": "Should cities ban cars?", **fields}


def task(event_id: str, **fields: Any) -> dict[str, Any]:
    segments = [{"speaker": "A", "text": "Cars are loud."}]
    return {"event_id": event_id, "context_id": f"ctx-{event_id}", "segments": segments, **fields}


TWO = [{"provider": "openai", "model": "m"}, {"provider": "google", "model": "g"}]

POISON: list[Poison] = [
    # --- the bytes ---
    Poison("tombstone", None, "tombstone", "TombstoneEvent"),
    Poison("not UTF-8", b"\xff\xfe{}", "undecodable", "UndecodableEvent", mentions=("UTF-8",)),
    Poison(
        "truncated UTF-8 sequence",
        b'{"event_id": "u-1", "topic": "\xc3"}',
        "undecodable",
        "UndecodableEvent",
    ),
    Poison(
        "UTF-8-encoded surrogate",
        b'{"event_id": "u-2", "topic": "\xed\xa0\x80"}',
        "undecodable",
        "UndecodableEvent",
    ),
    Poison("UTF-16", json.dumps(conv("u-3")).encode("utf-16"), "undecodable", "UndecodableEvent"),
    Poison(
        "lone surrogate escape",
        b'{"event_id": "u-4", "topic": "t", "metadata": {"k": "\\udfff"}}',
        "undecodable",
        "UndecodableEvent",
        "u-4",
        mentions=("metadata.k",),
    ),
    Poison(
        "lone surrogate escape in a key",
        b'{"event_id": "u-5", "topic": "t", "metadata": {"\\ud800": 1}}',
        "undecodable",
        "UndecodableEvent",
        "u-5",
    ),
    # --- the JSON ---
    Poison("empty value", b"", "invalid_json", "InvalidJSON"),
    Poison("whitespace", b"  \n ", "invalid_json", "InvalidJSON"),
    Poison("cut-off JSON", b'{"event_id": "j-1", ', "invalid_json", "InvalidJSON"),
    Poison("trailing data", b'{"event_id": "j-2", "topic": "t"} x', "invalid_json", "InvalidJSON"),
    Poison("byte-order mark", b'\xef\xbb\xbf{"event_id": "j-3"}', "invalid_json", "InvalidJSON"),
    Poison(
        "NaN", b'{"event_id": "j-4", "topic": "t", "max_turns": NaN}', "invalid_json", "InvalidJSON"
    ),
    Poison(
        "Infinity",
        b'{"event_id": "j-5", "metadata": {"x": -Infinity}}',
        "invalid_json",
        "InvalidJSON",
    ),
    Poison(
        "raw control character",
        b'{"event_id": "j-6", "topic": "a\x01b"}',
        "invalid_json",
        "InvalidJSON",
    ),
    Poison(
        "integer of 5,000 digits",
        b'{"event_id": "j-7", "topic": "t", "metadata": {"n": ' + b"9" * 5_000 + b"}}",
        "invalid_json",
        "InvalidJSON",
    ),
    Poison("nested too deeply", nested(5_000), "invalid_json", "InvalidJSON", mentions=("nested",)),
    # Parses as infinity, which neither JSON nor Postgres JSONB can hold: stored as is,
    # it failed the inbox's INSERT as if Postgres were down, and intake stopped.
    Poison(
        "a number too large for a float",
        b'{"event_id": "j-8", "topic": "t", "metadata": {"x": 1e400}}',
        "invalid_json",
        "InvalidJSON",
        mentions=("1e400 is out of range",),
    ),
    # Parses, but so close to Python's recursion limit that storing it would fail.
    Poison(
        "nested just short of the parser's limit",
        nested(975),
        "invalid_json",
        "InvalidJSON",
        "deep",
        mentions=("100 levels",),
    ),
    Poison(
        "nested past the depth limit",
        nested(100),
        "invalid_json",
        "InvalidJSON",
        "deep",
        mentions=("100 levels",),
    ),
    Poison("array", [1, 2], "invalid_json", "InvalidJSON", mentions=("object",)),
    Poison("string", "evt", "invalid_json", "InvalidJSON"),
    Poison("number", 42, "invalid_json", "InvalidJSON"),
    Poison("null", b"null", "invalid_json", "InvalidJSON"),
    Poison("boolean", True, "invalid_json", "InvalidJSON"),
    # --- the schema: one of each kind of field error ---
    Poison("empty object", {}, "schema_invalid", "SchemaInvalid", mentions=("event_id", "topic")),
    Poison(
        "missing event_id",
        {"topic": "t"},
        "schema_invalid",
        "SchemaInvalid",
        mentions=("event_id",),
    ),
    Poison(
        "missing topic",
        {"event_id": "s-1"},
        "schema_invalid",
        "SchemaInvalid",
        "s-1",
        mentions=("topic",),
    ),
    Poison(
        "event_id a number",
        {"event_id": 7, "topic": "t"},
        "schema_invalid",
        "SchemaInvalid",
        mentions=("event_id",),
    ),
    Poison(
        "event_id empty",
        {"event_id": "", "topic": "t"},
        "schema_invalid",
        "SchemaInvalid",
        mentions=("event_id",),
    ),
    Poison(
        "event_id too long",
        conv("e" * 129),
        "schema_invalid",
        "SchemaInvalid",
        "e" * 129,
        mentions=("event_id",),
    ),
    Poison(
        "event_id with a space",
        conv("s 2"),
        "schema_invalid",
        "SchemaInvalid",
        "s 2",
        mentions=("event_id",),
    ),
    Poison(
        "topic a number",
        conv("s-3", topic=42),
        "schema_invalid",
        "SchemaInvalid",
        "s-3",
        mentions=("topic",),
    ),
    Poison(
        "topic blank",
        conv("s-4", topic="   "),
        "schema_invalid",
        "SchemaInvalid",
        "s-4",
        mentions=("topic.title",),
    ),
    Poison(
        "topic too long",
        conv("s-5", topic="x" * 501),
        "schema_invalid",
        "SchemaInvalid",
        "s-5",
        mentions=("topic.title",),
    ),
    Poison(
        "extra field",
        conv("s-6", colour="red"),
        "schema_invalid",
        "SchemaInvalid",
        "s-6",
        mentions=("colour",),
    ),
    Poison(
        "nested extra field",
        conv("s-7", topic={"title": "t", "x": 1}),
        "schema_invalid",
        "SchemaInvalid",
        "s-7",
        mentions=("topic.x",),
    ),
    Poison(
        "max_turns a string",
        conv("s-8", max_turns="many"),
        "schema_invalid",
        "SchemaInvalid",
        "s-8",
        mentions=("max_turns",),
    ),
    Poison(
        "max_turns a boolean",
        conv("s-9", max_turns=True),
        "schema_invalid",
        "SchemaInvalid",
        "s-9",
        mentions=("max_turns",),
    ),
    Poison(
        "max_turns fractional",
        conv("s-10", max_turns=2.5),
        "schema_invalid",
        "SchemaInvalid",
        "s-10",
        mentions=("max_turns",),
    ),
    Poison(
        "max_turns over the cap",
        conv("s-11", max_turns=10_000),
        "schema_invalid",
        "SchemaInvalid",
        "s-11",
        mentions=("max_turns",),
    ),
    Poison(
        "min_turns over max_turns",
        conv("s-12", min_turns=5, max_turns=3),
        "schema_invalid",
        "SchemaInvalid",
        "s-12",
        mentions=("min_turns",),
    ),
    Poison(
        "min_turns negative",
        conv("s-13", min_turns=-1),
        "schema_invalid",
        "SchemaInvalid",
        "s-13",
        mentions=("min_turns",),
    ),
    Poison(
        "one participant",
        conv("s-14", participants=TWO[:1]),
        "schema_invalid",
        "SchemaInvalid",
        "s-14",
        mentions=("participants",),
    ),
    Poison(
        "unknown provider",
        conv("s-15", participants=[{"provider": "mistral", "model": "m"}, TWO[1]]),
        "schema_invalid",
        "SchemaInvalid",
        "s-15",
        mentions=("participants.0.provider",),
    ),
    Poison(
        "participants an object",
        conv("s-16", participants={"a": 1}),
        "schema_invalid",
        "SchemaInvalid",
        "s-16",
        mentions=("participants",),
    ),
    Poison(
        "metadata a list",
        conv("s-17", metadata=[1]),
        "schema_invalid",
        "SchemaInvalid",
        "s-17",
        mentions=("metadata",),
    ),
    Poison(
        "wrong event_type",
        conv("s-18", event_type="turn.completed"),
        "schema_invalid",
        "SchemaInvalid",
        "s-18",
        mentions=("event_type",),
    ),
    Poison(
        "schema_version a string",
        conv("s-19", schema_version="1"),
        "schema_invalid",
        "SchemaInvalid",
        "s-19",
        mentions=("schema_version",),
    ),
    Poison(
        "schema_version 2.0",
        conv("s-20", schema_version=2.0),
        "schema_invalid",
        "SchemaInvalid",
        "s-20",
        mentions=("schema_version",),
    ),
    Poison(
        "NUL in a value",
        conv("s-21", metadata={"k": "a\x00b"}),
        "schema_invalid",
        "SchemaInvalid",
        "s-21",
        mentions=("metadata.k", "NUL"),
    ),
    Poison(
        "NUL in a key",
        conv("s-22", metadata={"a\x00": 1}),
        "schema_invalid",
        "SchemaInvalid",
        "s-22",
        mentions=("NUL",),
    ),
    Poison(
        "metadata over its bound",
        conv("s-23", metadata={"pad": "x" * MAX_METADATA_BYTES}),
        "schema_invalid",
        "SchemaInvalid",
        "s-23",
        mentions=("metadata", f"at most {MAX_METADATA_BYTES} bytes"),
    ),
    # --- the version and the size ---
    Poison(
        "schema_version 2",
        conv("v-1", schema_version=2),
        "unsupported_version",
        "UnsupportedSchemaVersion",
        "v-1",
    ),
    Poison(
        "schema_version 0",
        conv("v-2", schema_version=0),
        "unsupported_version",
        "UnsupportedSchemaVersion",
        "v-2",
    ),
    Poison(
        "schema_version huge",
        conv("v-3", schema_version=10**30),
        "unsupported_version",
        "UnsupportedSchemaVersion",
        "v-3",
    ),
    Poison(
        "over the size limit",
        conv("big-1", metadata={"pad": "x" * MAX_EVENT_BYTES}),
        "too_large",
        "EventTooLarge",
        mentions=(f"limit is {MAX_EVENT_BYTES}",),
    ),
    Poison(
        "over the size limit in multi-byte characters",
        json.dumps(
            conv("big-2", metadata={"pad": "é" * (MAX_EVENT_BYTES // 2)}), ensure_ascii=False
        ).encode(),
        "too_large",
        "EventTooLarge",
    ),
    # --- the record around the value ---
    Poison("no key", b"{not json", "invalid_json", "InvalidJSON", key=None),
    Poison(
        "repeated and spoofed headers",
        b"{not json",
        "invalid_json",
        "InvalidJSON",
        headers=(("h", b"1"), ("h", b"2"), ("x-dlq-reason", b"spoofed"), ("x-replay-count", b"x")),
    ),
    # --- analysis.tasks ---
    Poison("analysis: not JSON", b"nope", "invalid_json", "InvalidJSON", kind="analysis"),
    Poison("analysis: tombstone", None, "tombstone", "TombstoneEvent", kind="analysis"),
    Poison(
        "analysis: no context_id",
        {"event_id": "a-1"},
        "schema_invalid",
        "SchemaInvalid",
        "a-1",
        kind="analysis",
        mentions=("context_id",),
    ),
    Poison(
        "analysis: empty segments",
        task("a-2", segments=[]),
        "schema_invalid",
        "SchemaInvalid",
        "a-2",
        kind="analysis",
        mentions=("segments",),
    ),
    Poison(
        "analysis: segment without text",
        task("a-3", segments=[{"speaker": "A"}]),
        "schema_invalid",
        "SchemaInvalid",
        "a-3",
        kind="analysis",
        mentions=("segments.0.text",),
    ),
    Poison(
        "analysis: segments a string",
        task("a-4", segments="text"),
        "schema_invalid",
        "SchemaInvalid",
        "a-4",
        kind="analysis",
        mentions=("segments",),
    ),
    Poison(
        "analysis: bad language",
        task("a-5", language="english!"),
        "schema_invalid",
        "SchemaInvalid",
        "a-5",
        kind="analysis",
        mentions=("language",),
    ),
    # A well-formed tag longer than analysis_runs.language holds.
    Poison(
        "analysis: language too long to store",
        task("a-10", language="en-abcdefgh-abcdefgh"),
        "schema_invalid",
        "SchemaInvalid",
        "a-10",
        kind="analysis",
        mentions=("language", "16"),
    ),
    Poison(
        "analysis: unknown analysis",
        task("a-6", prompt_ids={"poetry": "p.v1"}),
        "schema_invalid",
        "SchemaInvalid",
        "a-6",
        kind="analysis",
        mentions=("prompt_ids",),
    ),
    Poison(
        "analysis: context_id with a space",
        task("a-7", context_id="a b"),
        "schema_invalid",
        "SchemaInvalid",
        "a-7",
        kind="analysis",
        mentions=("context_id",),
    ),
    # Nothing of an analysis event is copied into its output unchecked: it has no metadata.
    Poison(
        "analysis: metadata",
        task("a-11", metadata={"batch": "b-7"}),
        "schema_invalid",
        "SchemaInvalid",
        "a-11",
        kind="analysis",
        mentions=("metadata: Extra inputs are not permitted",),
    ),
    Poison(
        "analysis: schema_version 3",
        task("a-8", schema_version=3),
        "unsupported_version",
        "UnsupportedSchemaVersion",
        "a-8",
        kind="analysis",
    ),
    Poison(
        "analysis: NUL in text",
        task("a-9", segments=[{"speaker": "A", "text": "\x00"}]),
        "schema_invalid",
        "SchemaInvalid",
        "a-9",
        kind="analysis",
        mentions=("NUL",),
    ),
]

#: Good records that must be handed off although they sit among the poison.
GOOD: list[tuple[str, str, bytes | None, Any, tuple[tuple[str, bytes], ...]]] = [
    # (kind, event id, key, value, headers)
    ("conversation", "ok-first", b"poison", conv("ok-first"), ()),
    ("conversation", "ok-dup", b"poison", conv("ok-dup"), ()),
    ("conversation", "ok-no-key", None, conv("ok-no-key"), ()),
    ("conversation", "ok-headers", b"poison", conv("ok-headers"), (("h", b"1"), ("h", b"2"))),
    (
        "conversation",
        "ok-unicode-😀",
        b"poison",
        json.dumps(
            conv("ok-unicode-😀", topic="مدن بلا سيارات? e\u0301 \U0001f697"), ensure_ascii=False
        ),
        (),
    ),
    ("conversation", "ok-nested", b"poison", nested(98).replace(b'"deep"', b'"ok-nested"'), ()),
    ("conversation", "ok-last", b"poison", conv("ok-last"), ()),
    ("analysis", "ok-analysis", b"poison", task("ok-analysis"), ()),
]

#: Same id, other payload: follows ``ok-dup`` on its partition (same key).
CONFLICT = Poison(
    "same event_id, other payload",
    conv("ok-dup", topic="Another topic"),
    "conflicting_duplicate",
    "ConflictingDuplicate",
    "ok-dup",
)


def raw_value(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.startswith("{"):
        return value.encode()
    return json.dumps(value).encode()


@dataclass
class Sent:
    """Where each produced record went: (topic, partition, offset) -> what it was."""

    poison: dict[tuple[str, int, int], Poison] = field(default_factory=dict)
    good: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    metadata: dict[str, list[Any]] = field(default_factory=dict)


@pytest.fixture
def s(kafka_topics: Settings, db: Any) -> Iterator[Settings]:
    """This test's topics, consumer group, Celery queue and event-size limit."""
    token = secrets.token_hex(3)
    scoped = kafka_topics.model_copy(
        update={
            "kafka_consumer_group_id": f"bad-input-{token}",
            "celery_queue": f"{kafka_topics.celery_queue}-bad-input-{token}",
            "max_event_bytes": MAX_EVENT_BYTES,
            "max_output_metadata_bytes": MAX_METADATA_BYTES,
        }
    )
    yield scoped
    client = broker_redis(scoped)
    try:
        client.delete(*queue_keys(scoped))
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _keep_current_celery_app() -> Iterator[None]:
    from celery import _state

    previous = getattr(_state._tls, "current_app", None)
    yield
    _state._set_current_app(previous)


def produce_all(s: Settings) -> Sent:
    """The stream: good records first and last, the conflict after its original."""
    topics = {"conversation": s.topic_conversation_new, "analysis": s.topic_analysis_tasks}
    items: list[tuple[str, bytes | None, bytes | None, tuple[tuple[str, bytes], ...], Any]] = []
    good = {g[1]: g for g in GOOD}
    order: list[Any] = [good["ok-first"], good["ok-dup"], *POISON[:30], CONFLICT]
    order += [good["ok-no-key"], good["ok-headers"], *POISON[30:], good["ok-unicode-😀"]]
    order += [good["ok-nested"], good["ok-analysis"], good["ok-last"]]
    for item in order:
        if isinstance(item, Poison):
            items.append((topics[item.kind], item.key, raw_value(item.value), item.headers, item))
        else:
            kind, event_id, key, value, headers = item
            items.append((topics[kind], key, raw_value(value), headers, event_id))
    sent = Sent()
    producer = make_producer(s)
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=list(headers))
            for topic, key, value, headers, _ in items
        ]
        for (topic, *_, what), future in zip(items, futures, strict=True):
            meta = future.get(timeout=10)
            sent.metadata.setdefault(topic, []).append(meta)
            where = (topic, meta.partition, meta.offset)
            if isinstance(what, Poison):
                sent.poison[where] = what
            else:
                sent.good[what] = where
    finally:
        producer.close()
    return sent


def rows(db: Any, sql: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(text(sql)))


def test_every_poison_class_is_dead_lettered_and_the_stream_flows_on(s: Settings, db: Any) -> None:
    assert {p.reason for p in [*POISON, CONFLICT]} == BRIDGE_REASONS
    sent = produce_all(s)
    total = len(sent.poison) + len(sent.good)
    options = BridgeOptions.from_settings(
        s, retry_base_s=0.2, retry_cap_s=1.0, heartbeat_interval_s=0.5
    )
    bridge = RunningBridge(Bridge(s, options=options, instance=f"bad-{secrets.token_hex(2)}"))
    try:
        bridge.wait_for(
            lambda: bridge.stats.consumed == total, what=f"all {total} records", timeout_s=90
        )
    finally:
        stats = bridge.stop()

    # The good records: recorded once and handed off once each, poison or not around them.
    good_ids = {g[1] for g in GOOD}
    inbox = {r.event_id: r.status for r in rows(db, "SELECT event_id, status FROM events")}
    assert inbox == dict.fromkeys(good_ids, "dispatched")
    assert sorted(q.id for q in queued(s)) == sorted(
        handoff_task_id(kind, event_id) for kind, event_id, *_ in GOOD
    )
    # Nothing half-written: the bridge writes only the inbox; no result rows either.
    for table in ("conversations", "conversation_turns", "analysis_runs", "llm_calls"):
        assert rows(db, f"SELECT count(*) FROM {table}")[0][0] == 0, table

    # The bad ones: one dead letter each, on the DLQ of their kind, saying why.
    poison = list(sent.poison.values())
    dlqs = {"conversation": s.topic_conversation_dlq, "analysis": s.topic_analysis_dlq}
    origin = {
        s.topic_conversation_dlq: s.topic_conversation_new,
        s.topic_analysis_dlq: s.topic_analysis_tasks,
    }
    letters: dict[tuple[str, int, int], Any] = {}
    for kind, dlq in dlqs.items():
        expected = sum(p.kind == kind for p in poison)
        found = read_topic(s, dlq, at_least=expected)
        assert len(found) == expected, kind
        for letter in found:
            h = dict(letter.headers)
            where = (origin[dlq], int(h["x-original-partition"]), int(h["x-original-offset"]))
            assert h["x-original-topic"] == origin[dlq].encode()
            letters[where] = letter
    assert set(letters) == set(sent.poison)
    for where, p in sent.poison.items():
        check_letter(letters[where], p)

    assert stats.errors == 0  # no record was taken for an outage and retried
    assert stats.handed_off == len(GOOD) and stats.duplicates == 0
    assert dict(stats.dead_lettered) == Counter(p.reason for p in poison)
    # Every offset committed: a restart would not see any of these again.
    for topic in (s.topic_conversation_new, s.topic_analysis_tasks):
        assert committed(s, topic) == end_offsets(sent.metadata[topic]), topic


def check_letter(letter: Any, p: Poison) -> None:
    names = [k for k, _ in letter.headers]
    ours = [k for k in names if k.startswith("x-")]
    # Each x- header once, ours (a producer's own x-dlq-reason is not passed on).
    assert sorted(ours) == sorted(DLQ_HEADERS), p.name
    h = {k: v.decode() for k, v in letter.headers if k.startswith("x-")}
    kept = [(k, v) for k, v in letter.headers if not k.startswith("x-")]
    assert kept == [(k, v) for k, v in p.headers if not k.startswith("x-")], p.name
    assert h["x-dlq-reason"] == p.reason, p.name
    assert h["x-error-class"] == p.error_class, p.name
    assert h["x-event-id"] == p.event_id, p.name
    assert h["x-attempts"] == "1" and h["x-replay-count"] == "0", p.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h["x-failed-at"]), p.name
    assert h["x-error-message"], p.name
    assert max(len(v) for v in h.values()) <= MAX_HEADER_CHARS, p.name
    for text_ in p.mentions:
        assert text_ in h["x-error-message"], (p.name, h["x-error-message"])
    # The original key and value, byte for byte.
    assert letter.key == p.key, p.name
    assert letter.value == raw_value(p.value), p.name


# --- hostile records through the bridge process -------------------------------------------------

#: A JSON key the credential-shape masking of log lines once took minutes over (every "a"
#: after a "." starts a URL-scheme match that runs to the end of the key): quoted in
#: full in the "extra field" error, and that error logged in full.
SLOW_KEY = "key " + "a." * 500_000
#: A key quoted once per item under it: one path string per item asked for 400 KB x
#: 150,000 items (60 GB) before the first error was raised.
WIDE_KEY = "K" * 400_000
#: An invalid record as large as the test's producer sends: with our headers, its dead
#: letter is over the record-size cap, and retrying it held intake for ever.
NEAR_CAP = b"not json " + b"x" * 1_048_300


@dataclass(frozen=True)
class Hostile:
    name: str
    value: bytes
    reason: str
    event_id: str = ""
    #: What the x-error-message (cut to the quote bound) starts with.
    starts: str = ""


HOSTILE = [
    Hostile(
        "slow key",
        json.dumps({"event_id": "h-slow", "topic": "t", SLOW_KEY: 1}).encode(),
        "schema_invalid",
        "h-slow",
        "ConversationRequest is invalid: key a.a.a.",
    ),
    Hostile(
        "wide key",
        json.dumps(
            {"event_id": "h-wide", "topic": "t", "metadata": {WIDE_KEY: [0] * 150_000}}
        ).encode(),
        "schema_invalid",
        "h-wide",
        "ConversationRequest is invalid: metadata: must be at most 65536 bytes as JSON",
    ),
    Hostile(
        "huge event id",
        json.dumps({"event_id": "e" * 1_000_000}).encode(),
        "schema_invalid",
        "e" * d.MAX_QUOTED_CHARS + f"…[{1_000_000 - d.MAX_QUOTED_CHARS} more chars]",
    ),
    Hostile("near the record cap", NEAR_CAP, "invalid_json", "", "message is not valid JSON"),
]


def test_hostile_records_are_dead_lettered_bounded_and_intake_goes_on(
    make_stack: Any, db: Any
) -> None:
    stack = make_stack()  # the default event limit: 1 MiB
    s = stack.settings
    bridge = stack.start_bridge()
    producer = make_producer(s)
    try:
        sent = [
            producer.send(s.topic_conversation_new, key=b"hostile", value=h.value).get(timeout=30)
            for h in HOSTILE
        ]
        producer.send(
            s.topic_conversation_new, key=b"hostile", value=json.dumps(conv("h-after")).encode()
        ).get(timeout=30)
    finally:
        producer.close()
    assert len(HOSTILE[0].value) > 1_000_000 and len(NEAR_CAP) > 1_048_000

    # The ordinary event behind them is recorded and handed off, within the wait a
    # quadratic pass over a megabyte (minutes) would blow.
    after = "SELECT 1 FROM events WHERE event_id = 'h-after' AND status = 'dispatched'"
    wait_for(
        lambda: bridge.assert_alive() or rows(db, after),
        timeout_s=60,
        what="the event after the hostile ones",
    )
    assert [q.id for q in queued(s)] == [handoff_task_id("conversation", "h-after")]
    assert rows(db, "SELECT event_id, status FROM events") == [("h-after", "dispatched")]

    letters = {
        int(dict(r.headers)["x-original-offset"]): r
        for r in read_topic(s, s.topic_conversation_dlq, at_least=len(HOSTILE), timeout_s=30)
    }
    assert sorted(letters) == [m.offset for m in sent]
    for h, meta in zip(HOSTILE, sent, strict=True):
        letter = letters[meta.offset]
        headers = {k: v.decode() for k, v in letter.headers}
        assert max(len(v) for k, v in headers.items() if k.startswith("x-")) <= MAX_HEADER_CHARS
        assert headers["x-dlq-reason"] == h.reason, h.name
        assert headers["x-event-id"] == h.event_id, h.name
        assert headers["x-error-message"].startswith(h.starts), (h.name, headers)
        if h.value is NEAR_CAP:
            # Too large to dead-letter whole: where it is, and how large it was.
            assert (letter.key, letter.value) == (None, b"")
            assert f"value {len(NEAR_CAP)} bytes" in headers["x-dlq-omitted"]
        else:
            assert (letter.key, letter.value) == (b"hostile", h.value), h.name

    bridge.stop()
    log = bridge.log()
    assert bridge.proc.returncode == 0, log[-4000:]
    summary = [line for line in log.splitlines() if " stopped: consumed=" in line]
    assert len(summary) == 1 and " errors=0 " in summary[0], log[-4000:]
    assert f"dead_lettered={len(HOSTILE)} " in summary[0]
    # Nothing the records held was logged at length.
    assert max(len(line) for line in log.splitlines()) < 4 * MAX_HEADER_CHARS


# --- metadata, and output events that must fit one record ---------------------------------------


def test_metadata_over_its_bound_is_dead_lettered_before_any_llm_call(
    make_stack: Any, sim_calls: Any
) -> None:
    stack = make_stack(max_output_metadata_bytes=4_096)
    s = stack.settings
    stack.start_all()
    [bad] = stack.produce_conversations(1, metadata={"notes": "n" * 5_000})
    [good] = stack.produce_conversations(1, min_turns=2, max_turns=2, metadata={"batch": "b-7"})
    [letter] = read_topic(s, s.topic_conversation_dlq, at_least=1, timeout_s=60)
    stack.wait_settled([good])

    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["x-dlq-reason"] == "schema_invalid"
    assert headers["x-event-id"] == bad
    assert "metadata: must be at most 4096 bytes as JSON, got 5012" in headers["x-error-message"]
    # Nothing recorded or paid for it; the event beside it ran, its metadata carried through.
    with stack.engine.connect() as conn:
        assert conn.scalar(select(func.count()).where(Event.event_id == bad)) == 0
        assert conn.scalar(select(Event.status).where(Event.event_id == good)) == "done"
        owners = dict(
            conn.execute(select(LLMCall.owner_id, func.count()).group_by(LLMCall.owner_id)).all()
        )
    assert set(owners) == {conversation_id(good)} and owners[conversation_id(good)] >= 2
    assert sim_calls.calls().total == owners[conversation_id(good)]
    [done] = read_topic(s, s.topic_conversation_completed, at_least=1)
    completed = json.loads(done.value)
    assert completed["metadata"] == {"batch": "b-7"} and "omitted" not in completed


def turn(i: int, content: str) -> TranscriptTurn:
    speaker = ("Ana", "Ben")[i % 2]
    return TranscriptTurn(
        turn_index=i, speaker=speaker, provider="anthropic", model="m", content=content
    )


def test_an_output_event_too_large_for_one_record_goes_without_its_bulky_fields(
    kafka_topics: Settings,
) -> None:
    # A state recorded before metadata was bounded (or a transcript longer than any record)
    # would be refused by the producer on every retry, all its turns paid for.
    s = kafka_topics
    cap = 65_536
    producer = make_producer(s, max_request_size=cap)
    sink = KafkaEventSink(producer, s)
    base = {
        "event_type": "conversation.completed",
        "conversation_id": "conv-big",
        "topic": {"title": "Should cities ban cars?"},
    }
    fits = [turn(0, "Cars are loud."), turn(1, "Shops need them.")]
    events = [
        ConversationCompleted.model_validate(
            base
            | {
                "event_id": "c-1",
                "turn_count": 2,
                "transcript": fits,
                "metadata": {"pad": "x" * cap},
            }
        ),
        ConversationCompleted.model_validate(
            base
            | {
                "event_id": "c-2",
                "turn_count": 3,
                "transcript": [*fits, turn(2, "y" * cap)],
                "metadata": {"batch": "b-7"},
            }
        ),
        ConversationCompleted.model_validate(
            base | {"event_id": "c-3", "turn_count": 2, "transcript": fits}
        ),
    ]
    analysis = AnalysisCompleted(
        event_id="a-1",
        conversation_id="doc-1",
        run_id="run-1",
        status="ok",
        bundle={"summary": "s" * cap, "worker_statuses": {"summary": "ok"}},
        worker_statuses={"summary": "ok"},
    )
    try:
        for event in [*events, analysis]:
            sink.publish(event)
    finally:
        producer.close()

    published = {
        e["event_id"]: e
        for e in (
            json.loads(r.value) for r in read_topic(s, s.topic_conversation_completed, at_least=3)
        )
    }
    assert published["c-1"]["omitted"] == ["metadata"] and published["c-1"]["metadata"] == {}
    assert [t["content"] for t in published["c-1"]["transcript"]] == [t.content for t in fits]
    assert published["c-2"]["omitted"] == ["metadata", "transcript"]
    assert published["c-2"]["transcript"] == [] and published["c-2"]["turn_count"] == 3
    assert "omitted" not in published["c-3"] and len(published["c-3"]["transcript"]) == 2
    [done] = read_topic(s, s.topic_analysis_completed, at_least=1)
    result = json.loads(done.value)
    assert result["omitted"] == ["bundle"] and result["bundle"] == {}
    assert result["worker_statuses"] == {"summary": "ok"} and result["run_id"] == "run-1"
