"""Fleet-wide metrics, computed at scrape time from the shared stores.

Workers, beat and the bridge are other processes, often on other machines: their
in-process counters never reach the web process's registry.  What the whole fleet
did is in the stores they share, so this collector reads those when Prometheus
scrapes:

- Postgres: LLM calls, tokens, cost and latency (``llm_calls``), analysis runs
  and the outcome of each analysis task (``analysis_runs``), conversations and
  inbox events by status (dead-lettered inbox events are the DLQ counts).
- Redis: each provider/model circuit breaker, the Celery queue and the tasks
  workers hold unacknowledged, live heartbeats per component.
- Kafka: the bridge group's lag per input topic and the records in each DLQ topic.

Each source is read with aggregate queries and short timeouts, and cached for a
few seconds, so a scrape stays cheap however often it comes.  A source that
cannot be read never fails the scrape: its families are left out and
``chimera_dependency_up{dependency=...}`` says 0.  Labels are low-cardinality
(provider, model, status, topic; never an id), and a provider or model is named only
if configured: ``llm_calls`` rows and breakers of any other are summed under ``other``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from chimera import defaults as d
from chimera import metrics
from chimera.db.tables import (
    CONVERSATION_STATUSES,
    EVENT_STATUSES,
    RUN_STATUSES,
    AnalysisRun,
    Conversation,
    Event,
    LLMCall,
)
from chimera.errors import ChimeraError, DatabaseUnavailable, KafkaUnavailable, RedisUnavailable
from chimera.kafka.clients import admin_client
from chimera.llm.breaker import CLOSED, HALF_OPEN, OPEN
from chimera.llm.catalog import catalog_for
from chimera.models.participants import ModelCatalog
from chimera.redis_client import make_redis
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: How long Postgres and Redis figures are reused before they are read again.
CACHE_S = 5.0
#: The same for Kafka, whose admin round trips cost more.
KAFKA_CACHE_S = 10.0
#: Longest a single source may take to answer.
SOURCE_TIMEOUT_S = 2.0

#: kombu's Redis transport: one list per priority step, ``<queue>\x06\x16<step>``
#: (step 0 is the bare name), and one hash of delivered, unacknowledged messages.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_UNACKED_KEY = "unacked"
_BREAKER_STATES = (CLOSED, OPEN, HALF_OPEN)
_EVENT_KINDS = ("conversation", "analysis")


# --- What each source yields ------------------------------------------------------


@dataclass(frozen=True)
class LLMTotals:
    provider: str
    model: str
    status: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float


@dataclass(frozen=True)
class DbStats:
    llm: tuple[LLMTotals, ...] = ()
    #: (status, source) -> runs
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (analysis, status) -> analysis tasks, from each run's worker_statuses
    analysis_tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    conversations: dict[str, int] = field(default_factory=dict)
    #: (kind, status) -> inbox events
    events: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class RedisStats:
    #: (provider, model) -> closed / open / half_open, as the next caller would find it
    breakers: dict[tuple[str, str], str] = field(default_factory=dict)
    queue_depth: int = 0
    unacked: int = 0
    #: component -> live heartbeat keys
    heartbeats: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaStats:
    #: input topic -> records the bridge group has not committed
    lag: dict[str, int] = field(default_factory=dict)
    #: DLQ topic -> records held
    dlq: dict[str, int] = field(default_factory=dict)


# --- Postgres ------------------------------------------------------------------------

_ANALYSIS_TASKS = text(
    """
    SELECT e.key AS analysis,
           COALESCE(CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value ->> 'status'
                         ELSE e.value #>> '{}' END, 'unknown') AS status,
           count(*) AS n
    FROM analysis_runs r,
         jsonb_each(CASE WHEN jsonb_typeof(r.worker_statuses) = 'object'
                         THEN r.worker_statuses ELSE '{}'::jsonb END) AS e
    GROUP BY 1, 2
    """
)


def read_db(engine: Engine, *, timeout_s: float = SOURCE_TIMEOUT_S) -> DbStats:
    """Aggregates of the five tables: one read-only transaction, a bounded statement time."""
    llm = select(
        LLMCall.provider,
        LLMCall.model,
        LLMCall.status,
        func.count(),
        func.coalesce(func.sum(LLMCall.input_tokens), 0),
        func.coalesce(func.sum(LLMCall.output_tokens), 0),
        func.coalesce(func.sum(LLMCall.cost_usd), 0),
        func.coalesce(func.sum(LLMCall.latency_ms), 0),
    ).group_by(LLMCall.provider, LLMCall.model, LLMCall.status)
    runs = select(AnalysisRun.status, AnalysisRun.source, func.count()).group_by(
        AnalysisRun.status, AnalysisRun.source
    )
    conversations = select(Conversation.status, func.count()).group_by(Conversation.status)
    events = select(Event.kind, Event.status, func.count()).group_by(Event.kind, Event.status)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
            return DbStats(
                llm=tuple(
                    LLMTotals(p, m, s, int(n), int(i), int(o), float(c), float(lat) / 1000)
                    for p, m, s, n, i, o, c, lat in conn.execute(llm)
                ),
                runs={(s, src): int(n) for s, src, n in conn.execute(runs)},
                analysis_tasks={(a, s): int(n) for a, s, n in conn.execute(_ANALYSIS_TASKS)},
                conversations={s: int(n) for s, n in conn.execute(conversations)},
                events={(k, s): int(n) for k, s, n in conn.execute(events)},
            )
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise DatabaseUnavailable(f"cannot read the fleet figures: {first}") from exc


# --- Redis -----------------------------------------------------------------------------


def read_redis(state: redis.Redis, broker: redis.Redis, settings: Settings) -> RedisStats:
    """Breakers and heartbeats from the state database, the queue from the broker's."""
    breaker_prefix = settings.redis_key("llm", "breaker", "")
    beat_prefix = settings.redis_key(d.KEY_HEARTBEAT, "")
    queue = settings.redis_key_prefix + settings.celery_queue
    queue_keys = [queue] + [f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS]
    try:
        breaker_keys = sorted(state.scan_iter(match=_glob(breaker_prefix) + "*", count=1_000))
        beat_keys = list(state.scan_iter(match=_glob(beat_prefix) + "*", count=1_000))
        pipe = state.pipeline(transaction=False)
        pipe.time()  # the breaker's clock is the Redis server's
        for key in breaker_keys:
            pipe.hgetall(key)
        server_time, *hashes = pipe.execute()
        qpipe = broker.pipeline(transaction=False)
        for key in queue_keys:
            qpipe.llen(key)
        qpipe.hlen(settings.redis_key_prefix + _UNACKED_KEY)
        *lengths, unacked = qpipe.execute()
    except RedisError as exc:
        raise RedisUnavailable(f"cannot read the fleet figures from Redis: {exc}") from exc
    now_ms = int(server_time[0]) * 1000 + int(server_time[1]) // 1000
    breakers: dict[tuple[str, str], str] = {}
    for key, fields in zip(breaker_keys, hashes, strict=True):
        provider, sep, model = key[len(breaker_prefix) :].partition(":")
        if sep and fields:
            breakers[(provider, model)] = _breaker_state(fields, now_ms)
    heartbeats: dict[str, int] = {}
    for key in beat_keys:
        component = key[len(beat_prefix) :].split(":", 1)[0]
        heartbeats[component] = heartbeats.get(component, 0) + 1
    return RedisStats(breakers, sum(int(n) for n in lengths), int(unacked), heartbeats)


def _glob(literal: str) -> str:
    """``literal`` with Redis glob metacharacters escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in literal)


def _breaker_state(fields: dict[str, str], now_ms: int) -> str:
    state = fields.get("state", CLOSED)
    if state == OPEN and now_ms >= int(fields.get("opened_until", 0)):
        return HALF_OPEN  # cooled down: the next caller is let through as the probe
    return state if state in _BREAKER_STATES else CLOSED


# --- Kafka ------------------------------------------------------------------------------


def read_kafka(settings: Settings, *, timeout_s: float = SOURCE_TIMEOUT_S) -> KafkaStats:
    """The bridge group's lag per input topic and the size of each DLQ topic."""
    inputs = [settings.topic_conversation_new, settings.topic_analysis_tasks]
    dlqs = [settings.topic_conversation_dlq, settings.topic_analysis_dlq]
    group = settings.kafka_consumer_group_id
    with admin_client(settings, timeout_ms=int(timeout_s * 1000)) as admin:
        try:
            described = admin.describe_topics(inputs + dlqs)
            parts = [
                TopicPartition(t["name"], p["partition_index"])
                for t in described
                if t["error_code"] == 0
                for p in t["partitions"]
            ]
            if not parts:
                return KafkaStats()
            latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in parts})
            earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in parts})
            input_parts = [tp for tp in parts if tp.topic in inputs]
            committed = (
                admin.list_group_offsets({group: input_parts}).get(group, {}) if input_parts else {}
            )
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot read Kafka offsets: {exc}") from exc
    lag: dict[str, int] = {}
    dlq: dict[str, int] = {}
    for tp in parts:
        end, start = int(latest[tp].offset), int(earliest[tp].offset)
        if tp.topic in inputs:
            done = committed.get(tp)
            # No commit yet: the group starts from the earliest record (auto_offset_reset).
            position = done.offset if done is not None and done.offset >= 0 else start
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - position)
        else:
            dlq[tp.topic] = dlq.get(tp.topic, 0) + max(0, end - start)
    return KafkaStats(lag, dlq)


# --- The collector -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The latest read of one source: its stats, or why there are none."""

    stats: Any
    at: float
    duration_s: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class FleetCollector:
    """A prometheus_client collector of the fleet's figures (register it on a registry)."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        cache_s: float = CACHE_S,
        kafka_cache_s: float = KAFKA_CACHE_S,
        timeout_s: float = SOURCE_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._timeout_s = timeout_s
        probe = settings.model_copy(
            update={"redis_socket_timeout_s": timeout_s, "redis_connect_timeout_s": timeout_s}
        )
        self._state = make_redis(probe)
        self._broker = make_redis(probe, db=settings.redis_broker_db)
        self._sources: dict[str, tuple[Callable[[], Any], float]] = {
            "postgres": (lambda: read_db(engine, timeout_s=timeout_s), cache_s),
            "redis": (lambda: read_redis(self._state, self._broker, settings), cache_s),
            "kafka": (lambda: read_kafka(settings, timeout_s=timeout_s), kafka_cache_s),
        }
        self._readings: dict[str, Reading] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="fleet-metrics")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._state.close()
        self._broker.close()

    def readings(self) -> dict[str, Reading]:
        """Every source's latest reading, reading again (in parallel) those gone stale."""
        with self._lock:
            now = time.monotonic()
            stale = [
                name
                for name, (_, ttl) in self._sources.items()
                if name not in self._readings or now - self._readings[name].at >= ttl
            ]
            futures = {name: self._pool.submit(self._read, name) for name in stale}
            for name, future in futures.items():
                self._readings[name] = future.result()
            return dict(self._readings)

    def _read(self, name: str) -> Reading:
        reader, _ = self._sources[name]
        started = time.monotonic()
        previous = self._readings.get(name)
        try:
            stats = reader()
        except Exception as exc:
            if not isinstance(exc, ChimeraError):
                log.exception("unexpected failure reading %s for the fleet metrics", name)
            metrics.FLEET_SCRAPE_ERRORS.labels(name).inc()
            if previous is None or previous.ok:
                log.warning("fleet metrics: %s unavailable: %s", name, exc)
            return Reading(
                None, started, time.monotonic() - started, str(exc) or type(exc).__name__
            )
        if previous is not None and not previous.ok:
            log.info("fleet metrics: %s is back", name)
        return Reading(stats, started, time.monotonic() - started)

    def collect(self) -> Iterator[Metric]:
        readings = self.readings()
        up = GaugeMetricFamily(
            "chimera_dependency_up",
            "1 if the web process's last read of the dependency succeeded, else 0.",
            labels=["dependency"],
        )
        took = GaugeMetricFamily(
            "chimera_fleet_scrape_duration_seconds",
            "How long the last read of each shared store took.",
            labels=["dependency"],
        )
        for name, reading in readings.items():
            up.add_metric([name], 1 if reading.ok else 0)
            took.add_metric([name], reading.duration_s)
        yield up
        yield took
        db = readings["postgres"].stats if readings["postgres"].ok else None
        catalog = catalog_for(self._settings)
        if db is not None:
            yield from _db_families(db, catalog)
        if readings["redis"].ok:
            yield from _redis_families(readings["redis"].stats, db, self._settings, catalog)
        if readings["kafka"].ok:
            yield from _kafka_families(readings["kafka"].stats)


def _db_families(db: DbStats, catalog: ModelCatalog) -> Iterator[Metric]:
    labels = ["provider", "model", "status"]
    calls = CounterMetricFamily(
        "chimera_fleet_llm_calls", "LLM call attempts, fleet-wide (llm_calls).", labels=labels
    )
    seconds = CounterMetricFamily(
        "chimera_fleet_llm_call_seconds",
        "Summed LLM call latency, fleet-wide; divide by calls for the mean.",
        labels=labels,
    )
    tokens = CounterMetricFamily(
        "chimera_fleet_llm_tokens",
        "Tokens used, fleet-wide.",
        labels=["provider", "model", "direction"],
    )
    cost = CounterMetricFamily(
        "chimera_fleet_llm_cost_usd", "LLM cost in USD, fleet-wide.", labels=["provider", "model"]
    )
    call_sums: dict[tuple[str, str, str], tuple[int, float]] = {}
    token_sums: dict[tuple[str, str, str], int] = {}
    cost_sums: dict[tuple[str, str], float] = {}
    for t in db.llm:
        pm = catalog.labels(t.provider, t.model)
        n, lat = call_sums.get((*pm, t.status), (0, 0.0))
        call_sums[(*pm, t.status)] = (n + t.calls, lat + t.latency_s)
        for direction, n in (("input", t.input_tokens), ("output", t.output_tokens)):
            token_sums[(*pm, direction)] = token_sums.get((*pm, direction), 0) + n
        cost_sums[pm] = cost_sums.get(pm, 0.0) + t.cost_usd
    for (provider, model, status), (n, lat) in sorted(call_sums.items()):
        calls.add_metric([provider, model, status], n)
        seconds.add_metric([provider, model, status], lat)
    for (provider, model, direction), n in sorted(token_sums.items()):
        tokens.add_metric([provider, model, direction], n)
    for (provider, model), usd in sorted(cost_sums.items()):
        cost.add_metric([provider, model], usd)
    yield from (calls, seconds, tokens, cost)

    runs = CounterMetricFamily(
        "chimera_fleet_analysis_runs",
        "Analysis runs by status (ok, partial, failed) and source (kafka, realtime).",
        labels=["status", "source"],
    )
    for pair in sorted(_zero_filled(db.runs, RUN_STATUSES, ("kafka", "realtime"))):
        runs.add_metric(list(pair), db.runs.get(pair, 0))
    yield runs
    tasks = CounterMetricFamily(
        "chimera_fleet_analysis_tasks",
        "Outcomes of the analysis tasks of every run, by analysis and status.",
        labels=["analysis", "status"],
    )
    for (analysis, status), n in sorted(db.analysis_tasks.items()):
        tasks.add_metric([analysis, status], n)
    yield tasks

    conversations = GaugeMetricFamily(
        "chimera_fleet_conversations", "Stored conversations by status.", labels=["status"]
    )
    for status in sorted(set(CONVERSATION_STATUSES) | set(db.conversations)):
        conversations.add_metric([status], db.conversations.get(status, 0))
    yield conversations
    events = GaugeMetricFamily(
        "chimera_fleet_inbox_events",
        "Inbox events by kind and status; status dead_lettered counts what went to the DLQ.",
        labels=["kind", "status"],
    )
    for pair in sorted(_zero_filled(db.events, _EVENT_KINDS, EVENT_STATUSES)):
        events.add_metric(list(pair), db.events.get(pair, 0))
    yield events


def _zero_filled(
    seen: dict[tuple[str, str], int], first: tuple[str, ...], second: tuple[str, ...]
) -> set[tuple[str, str]]:
    """Every known label pair (so a zero is a zero, not a missing series), plus any seen."""
    return {(a, b) for a in first for b in second} | set(seen)


def _redis_families(
    r: RedisStats, db: DbStats | None, settings: Settings, catalog: ModelCatalog
) -> Iterator[Metric]:
    breaker = GaugeMetricFamily(
        "chimera_fleet_llm_breaker_state",
        "1 for the state each provider/model circuit breaker is in (fleet-wide, from Redis); "
        "for model other, how many unconfigured models' breakers are in it.",
        labels=["provider", "model", "state"],
    )
    # A breaker with nothing to report has no key: a model seen in llm_calls is closed.
    known = {(t.provider, t.model) for t in db.llm} if db is not None else set()
    in_state: dict[tuple[str, str, str], int] = {}
    for provider, model in known | set(r.breakers):
        current = r.breakers.get((provider, model), CLOSED)
        for state in _BREAKER_STATES:
            key = (*catalog.labels(provider, model), state)
            in_state[key] = in_state.get(key, 0) + (1 if state == current else 0)
    for (provider, model, state), n in sorted(in_state.items()):
        breaker.add_metric([provider, model, state], n)
    yield breaker
    queue = GaugeMetricFamily(
        "chimera_fleet_celery_queue_depth",
        "Messages waiting in the Celery queue (every priority).",
        labels=["queue"],
    )
    queue.add_metric([settings.celery_queue], r.queue_depth)
    yield queue
    yield GaugeMetricFamily(
        "chimera_fleet_celery_unacked",
        "Messages workers have taken and not yet acknowledged (running or prefetched).",
        value=r.unacked,
    )
    beats = GaugeMetricFamily(
        "chimera_fleet_heartbeats",
        "Live heartbeat keys per component (worker, beat, bridge).",
        labels=["component"],
    )
    for component in sorted({"worker", "beat", "bridge"} | set(r.heartbeats)):
        beats.add_metric([component], r.heartbeats.get(component, 0))
    yield beats


def _kafka_families(k: KafkaStats) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "chimera_fleet_bridge_lag_messages",
        "Records of each input topic the bridge's consumer group has not committed.",
        labels=["topic"],
    )
    for topic, n in sorted(k.lag.items()):
        lag.add_metric([topic], n)
    yield lag
    dlq = GaugeMetricFamily(
        "chimera_fleet_dlq_messages", "Records held in each dead-letter topic.", labels=["topic"]
    )
    for topic, n in sorted(k.dlq.items()):
        dlq.add_metric([topic], n)
    yield dlq
