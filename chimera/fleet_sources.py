"""The fleet's figures, read from the stores every process shares.

Each reader asks one store with aggregate queries and a short timeout and returns a small
frozen record; :class:`chimera.fleet_metrics.FleetCollector` caches these and turns them
into Prometheus families.

- :func:`read_db` (Postgres): LLM calls, tokens, cost and latency (``llm_calls``), analysis
  runs and the outcome of each analysis task (``analysis_runs``), conversations and inbox
  events by status.
- :func:`read_redis`: each provider/model circuit breaker, the Celery queue and the tasks
  workers hold unacknowledged, live heartbeats per component.
- :func:`read_kafka`: the bridge group's lag per input topic and the records in each DLQ
  topic.

A store that cannot be read raises :class:`~chimera.errors.DatabaseUnavailable`,
:class:`~chimera.errors.RedisUnavailable` or :class:`~chimera.errors.KafkaUnavailable`
(or, for a refused command, :class:`~chimera.errors.DataRejected`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from sqlalchemy import Engine, func, or_, select, text

from chimera import defaults as d
from chimera.db.errors import database_errors
from chimera.db.tables import AnalysisRun, Conversation, Event, Job, LLMCall
from chimera.jobs.figures import figures
from chimera.jobs.plan import ACTIVE
from chimera.kafka.clients import admin_client
from chimera.kafka.errors import kafka_errors
from chimera.llm.breaker import CLOSED, HALF_OPEN, OPEN
from chimera.redis_errors import redis_errors
from chimera.settings import Settings

#: Longest a single source may take to answer.
SOURCE_TIMEOUT_S = 2.0

#: kombu's Redis transport: one list per priority step, ``<queue>\x06\x16<step>``
#: (step 0 is the bare name), and one hash of delivered, unacknowledged messages.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_UNACKED_KEY = "unacked"
#: The states a breaker is reported in: as the next caller would find it.
BREAKER_STATES = (CLOSED, OPEN, HALF_OPEN)

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


#: Finished jobs stay in the per-job gauges this long after they end.
JOB_GAUGE_KEEP_S = 3_600


@dataclass(frozen=True)
class JobStats:
    """One job's figures, for the per-job gauges (active jobs and recently finished)."""

    job_id: str
    status: str
    accepted: int
    running: int
    spent_usd: float
    budget_usd: float | None
    target: int | None
    yield_: float | None


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
    jobs: tuple[JobStats, ...] = ()


@dataclass(frozen=True)
class RedisStats:
    #: (provider, model) -> closed / open / half_open, as the next caller would find it
    breakers: dict[tuple[str, str], str] = field(default_factory=dict)
    queue_depth: int = 0
    unacked: int = 0
    #: The admission's running (unexpired) and waiting conversations.
    admission_running: int = 0
    admission_waiting: int = 0
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
    with database_errors("cannot read the fleet figures", brief=True), engine.begin() as conn:
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
            jobs=_jobs(conn),
        )


def _jobs(conn: Any) -> tuple[JobStats, ...]:
    """The active jobs and those finished within ``JOB_GAUGE_KEEP_S`` (bounded labels)."""
    recent = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, JOB_GAUGE_KEEP_S)
    rows = conn.execute(
        select(Job.id, Job.status, Job.spec).where(
            or_(
                Job.status.in_([s.value for s in ACTIVE]),
                Job.finished_at.is_(None),
                Job.finished_at >= recent,
            )
        )
    ).all()
    out = []
    for jid, status, spec in rows:
        fig = figures(conn, jid)
        budget = spec.get("budget_usd")
        out.append(
            JobStats(
                jid,
                status,
                fig.accepted,
                fig.running,
                float(fig.cost_usd),
                None if budget is None else float(budget),
                spec.get("target"),
                fig.yield_,
            )
        )
    return tuple(out)


# --- Redis -----------------------------------------------------------------------------


def read_redis(state: redis.Redis, broker: redis.Redis, settings: Settings) -> RedisStats:
    """Breakers and heartbeats from the state database, the queue from the broker's."""
    breaker_prefix = settings.redis_key("llm", "breaker", "")
    beat_prefix = settings.redis_key(d.KEY_HEARTBEAT, "")
    queue = settings.redis_key_prefix + settings.celery_queue
    queue_keys = [queue] + [f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS]
    with redis_errors("cannot read the fleet figures from Redis"):
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
        running_key = settings.redis_key("admission", "running")
        seconds, micros = server_time
        admission_now_ms = int(seconds) * 1000 + int(micros) // 1000
        admission = state.pipeline(transaction=False)
        admission.zcount(running_key, admission_now_ms, "+inf")
        admission.zcard(settings.redis_key("admission", "waiting"))
        n_running, n_waiting = admission.execute()
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
    return RedisStats(
        breakers,
        sum(int(n) for n in lengths),
        int(unacked),
        heartbeats=heartbeats,
        admission_running=int(n_running),
        admission_waiting=int(n_waiting),
    )


def _glob(literal: str) -> str:
    """``literal`` with Redis glob metacharacters escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in literal)


def _breaker_state(fields: dict[str, str], now_ms: int) -> str:
    state = fields.get("state", CLOSED)
    if state == OPEN and now_ms >= int(fields.get("opened_until", 0)):
        return HALF_OPEN  # cooled down: the next caller is let through as the probe
    return state if state in BREAKER_STATES else CLOSED


# --- Kafka ------------------------------------------------------------------------------


def read_kafka(settings: Settings, *, timeout_s: float = SOURCE_TIMEOUT_S) -> KafkaStats:
    """The bridge group's lag per input topic and the size of each DLQ topic."""
    inputs = [settings.topic_conversation_new, settings.topic_analysis_tasks]
    dlqs = [settings.topic_conversation_dlq, settings.topic_analysis_dlq]
    group = settings.kafka_consumer_group_id
    with (
        admin_client(settings, timeout_ms=int(timeout_s * 1000)) as admin,
        kafka_errors("cannot read Kafka offsets"),
    ):
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
