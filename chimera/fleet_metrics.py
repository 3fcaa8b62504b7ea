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

The readers are in :mod:`chimera.fleet_sources`; this module caches what they return and
turns it into Prometheus families.  Each source is read with aggregate queries and short
timeouts, and cached for a few seconds, so a scrape stays cheap however often it comes.
A source that cannot be read never fails the scrape: its families are left out and
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
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine

from chimera import metrics
from chimera.db.tables import CONVERSATION_STATUSES, EVENT_STATUSES, RUN_STATUSES
from chimera.errors import ChimeraError
from chimera.fleet_sources import (
    BREAKER_STATES,
    SOURCE_TIMEOUT_S,
    DbStats,
    KafkaStats,
    RedisStats,
    read_db,
    read_kafka,
    read_redis,
)
from chimera.llm.breaker import CLOSED
from chimera.llm.catalog import catalog_for
from chimera.models.participants import ModelCatalog
from chimera.redis_client import make_redis
from chimera.settings import Settings

log = logging.getLogger(__name__)

#: How long Postgres and Redis figures are reused before they are read again.
CACHE_S = 5.0
#: The same for Kafka, whose admin round trips cost more.
KAFKA_CACHE_S = 10.0
_EVENT_KINDS = ("conversation", "analysis")


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
            yield from _job_families(db)
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


def _job_families(db: DbStats) -> Iterator[Metric]:
    """Per-job gauges, labelled by job id: only active jobs and those finished within the
    last hour (``JOB_GAUGE_KEEP_S``), so the series stay bounded."""
    labels = ["job_id", "status"]
    families = {
        "accepted": GaugeMetricFamily(
            "chimera_job_accepted", "Accepted conversations of the job.", labels=labels
        ),
        "running": GaugeMetricFamily(
            "chimera_job_running", "The job's conversations pending or running.", labels=labels
        ),
        "spent": GaugeMetricFamily(
            "chimera_job_spent_usd", "USD spent on the job's LLM calls.", labels=labels
        ),
        "budget": GaugeMetricFamily(
            "chimera_job_budget_usd", "The job's budget in USD (jobs that have one).", labels=labels
        ),
        "target": GaugeMetricFamily(
            "chimera_job_target",
            "Accepted conversations the job wants (jobs with a target).",
            labels=labels,
        ),
        "yield": GaugeMetricFamily(
            "chimera_job_yield", "Accepted / finished (once any finished).", labels=labels
        ),
    }
    for j in db.jobs:
        key = [j.job_id, j.status]
        families["accepted"].add_metric(key, j.accepted)
        families["running"].add_metric(key, j.running)
        families["spent"].add_metric(key, j.spent_usd)
        for name, value in (("budget", j.budget_usd), ("target", j.target), ("yield", j.yield_)):
            if value is not None:
                families[name].add_metric(key, value)
    yield from families.values()


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
        for state in BREAKER_STATES:
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
    yield GaugeMetricFamily(
        "chimera_fleet_conversations_running",
        "Conversations admitted and running (the admission's unexpired places), fleet-wide.",
        value=r.admission_running,
    )
    yield GaugeMetricFamily(
        "chimera_fleet_conversations_waiting_admission",
        "Conversations waiting for admission (CHIMERA_MAX_RUNNING_CONVERSATIONS), fleet-wide.",
        value=r.admission_waiting,
    )


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
