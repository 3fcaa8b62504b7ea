"""What happened to every event, from Postgres, Kafka and the simulator; the table.

- **lost**: a valid event published but never recorded in the inbox, or recorded and
  still neither ``done`` nor ``dead_lettered``, or ``done`` without its result row.
- **duplicates**: more than one conversation or analysis run for an event, more than one
  turn at an index, or a turn repeated inside a conversation (the same text twice, or one
  speaker twice in a row).
- **LLM calls per step**: ``llm_calls`` rows per (owner, step).  Error rows are the
  retries the injected LLM faults explain; a step paid twice (two ``ok`` rows) is
  explained when a process fault (kill, stop, Redis restart) fell between the two.
- **memory slope**: RSS against events settled, least squares per process lifetime
  (a restart starts a new lifetime), in MB per 1,000 events.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import redis
from kafka import TopicPartition
from sqlalchemy import Engine, text

from chimera.kafka.clients import make_consumer
from chimera.settings import Settings
from soak.faults import PROCESS_FAULTS, FaultRecord
from soak.monitor import Sample, UnexpectedExit
from soak.workload import POISON_HEADER, Record

#: A lifetime's first samples are start-up (imports, pools, caches), not a trend.
WARMUP_S = 60.0
MIN_SAMPLES = 5
MIN_SPAN_EVENTS = 50


def build(
    settings: Settings,
    engine: Engine,
    *,
    published: list[Record],
    placed: dict[tuple[str, int, int], Record],
    publish_failed: int,
    planned: int,
    faults: list[FaultRecord],
    exits: list[UnexpectedExit],
    samples: list[Sample],
    sim: dict[str, Any] | None,
    options: dict[str, Any],
    timing: dict[str, float],
) -> dict[str, Any]:
    valid = {r.event_id: r for r in published if r.kind in ("conversation", "analysis")}
    poison = [r for r in published if r.kind == "poison"]
    with engine.connect() as conn:
        inbox = {
            row.event_id: row
            for row in conn.execute(text("SELECT event_id, kind, status, attempts FROM events"))
        }
        outcome = _outcome(conn, valid, inbox)
        duplicates = _duplicates(conn)
        llm = _llm_calls(conn, faults)
        results = _results(conn)
    dlq = _dead_letters(settings, placed, poison, inbox)
    outputs = _outputs(settings)
    report = {
        "options": options,
        "timing": timing,
        "events": {
            "planned": planned,
            "records_published": len(published),
            "events_in": len(valid),
            "conversation_events": sum(1 for r in valid.values() if r.kind == "conversation"),
            "analysis_events": sum(1 for r in valid.values() if r.kind == "analysis"),
            "exact_duplicates_published": sum(1 for r in published if r.kind == "duplicate"),
            "poison_published": len(poison),
            "publish_failed": publish_failed,
        },
        "outcome": outcome,
        "results": results,
        "dead_letters": dlq,
        "duplicates": duplicates,
        "output_messages": outputs,
        "llm": llm | {"simulator": _sim_summary(sim, llm)},
        "faults": [f.to_json() for f in faults],
        "unexpected_exits": [e.to_json() for e in exits],
        "memory": memory_slopes(samples),
        "residue": _residue(settings),
    }
    report["verdict"] = {
        "lost": outcome["lost"],
        "duplicates": duplicates["total"],
        "ok": outcome["lost"] == 0 and duplicates["total"] == 0,
    }
    return report


# --- events ---------------------------------------------------------------------------


def _outcome(conn: Any, valid: dict[str | None, Record], inbox: dict[str, Any]) -> dict[str, Any]:
    missing = [e for e in valid if e not in inbox]
    statuses = Counter(inbox[e].status for e in valid if e in inbox)
    stuck = [e for e in valid if e in inbox and inbox[e].status in ("received", "dispatched")]
    done_conv = conn.execute(
        text(
            "SELECT e.event_id FROM events e LEFT JOIN conversations c ON c.event_id = e.event_id"
            " WHERE e.kind = 'conversation' AND e.status = 'done'"
            " AND (c.id IS NULL OR c.status <> 'completed')"
        )
    ).scalars()
    done_run = conn.execute(
        text(
            "SELECT e.event_id FROM events e LEFT JOIN analysis_runs r ON r.event_id = e.event_id"
            " WHERE e.kind = 'analysis' AND e.status = 'done' AND r.id IS NULL"
        )
    ).scalars()
    without_result = [*done_conv, *done_run]
    lost = len(missing) + len(stuck) + len(without_result)
    return {
        "done": statuses.get("done", 0),
        "dead_lettered": statuses.get("dead_lettered", 0),
        "lost": lost,
        "missing_from_inbox": _sample_ids(missing),
        "stuck": {s: statuses.get(s, 0) for s in ("received", "dispatched")},
        "stuck_ids": _sample_ids(stuck),
        "done_without_result": _sample_ids(without_result),
        "inbox_rows_not_published": len(set(inbox) - set(valid)),
        "reconciler_attempts": dict(
            sorted(Counter(int(inbox[e].attempts) for e in valid if e in inbox).items())
        ),
    }


def _sample_ids(ids: Iterable[Any], n: int = 10) -> dict[str, Any]:
    ids = list(ids)
    return {"count": len(ids), "first": [str(i) for i in ids[:n]]}


def _results(conn: Any) -> dict[str, Any]:
    conversations = dict(
        conn.execute(text("SELECT status, count(*) FROM conversations GROUP BY 1")).all()
    )
    runs = dict(conn.execute(text("SELECT status, count(*) FROM analysis_runs GROUP BY 1")).all())
    errors = conn.execute(
        text(
            "SELECT split_part(coalesce(last_error, '?'), ':', 1), count(*) FROM events"
            " WHERE status = 'dead_lettered' GROUP BY 1 ORDER BY 2 DESC"
        )
    ).all()
    return {
        "conversations": conversations,
        "analysis_runs": runs,
        "dead_lettered_events_by_error": {str(k)[:80]: n for k, n in errors},
    }


def _duplicates(conn: Any) -> dict[str, Any]:
    def count(sql: str) -> int:
        return int(conn.execute(text(sql)).scalar_one())

    conversations = count(
        "SELECT count(*) FROM (SELECT event_id FROM conversations GROUP BY 1 HAVING count(*) > 1) x"
    )
    runs = count(
        "SELECT count(*) FROM (SELECT event_id FROM analysis_runs WHERE event_id IS NOT NULL"
        " GROUP BY 1 HAVING count(*) > 1) x"
    )
    same_index = count(
        "SELECT count(*) FROM (SELECT conversation_id, turn_index FROM conversation_turns"
        " GROUP BY 1, 2 HAVING count(*) > 1) x"
    )
    turns: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(
        text(
            "SELECT conversation_id, turn_index, speaker, content FROM conversation_turns"
            " ORDER BY conversation_id, turn_index"
        )
    ):
        turns[row.conversation_id].append(row)
    repeated = []
    for cid, rows in turns.items():
        texts = [r.content for r in rows]
        same_speaker = any(a.speaker == b.speaker for a, b in pairwise(rows))
        if len(set(texts)) < len(texts) or same_speaker:
            repeated.append(cid)
    gaps = conn.execute(
        text(
            "SELECT c.id FROM conversations c LEFT JOIN conversation_turns t"
            " ON t.conversation_id = c.id WHERE c.status = 'completed'"
            " GROUP BY c.id, c.turn_count HAVING count(t.id) <> c.turn_count"
            " OR coalesce(max(t.turn_index), -1) <> c.turn_count - 1"
        )
    ).scalars()
    gap_ids = list(gaps)
    return {
        "conversations_per_event_gt1": conversations,
        "analysis_runs_per_event_gt1": runs,
        "turns_per_index_gt1": same_index,
        "conversations_with_repeated_turns": _sample_ids(repeated),
        "completed_with_turn_gaps": _sample_ids(gap_ids),
        "total": conversations + runs + same_index + len(repeated) + len(gap_ids),
    }


# --- LLM calls --------------------------------------------------------------------------


def _llm_calls(conn: Any, faults: list[FaultRecord]) -> dict[str, Any]:
    rows = conn.execute(
        text(
            "SELECT owner_type, owner_id, step, count(*) AS n,"
            " count(*) FILTER (WHERE status = 'ok') AS ok,"
            " array_agg(extract(epoch FROM created_at) ORDER BY created_at)"
            "   FILTER (WHERE status = 'ok') AS ok_at"
            " FROM llm_calls GROUP BY 1, 2, 3"
        )
    ).all()
    errors = conn.execute(
        text(
            "SELECT split_part(coalesce(error, '?'), ':', 1), count(*) FROM llm_calls"
            " WHERE status <> 'ok' GROUP BY 1 ORDER BY 2 DESC"
        )
    ).all()
    process_faults = sorted(f.at for f in faults if f.kind in PROCESS_FAULTS)
    per_step = Counter(int(r.n) for r in rows)
    paid_twice = [r for r in rows if r.ok > 1]
    explained = 0
    for r in paid_twice:
        first, last = float(r.ok_at[0]), float(r.ok_at[-1])
        if any(first - 5 <= t <= last + 5 for t in process_faults):
            explained += 1
    total = sum(int(r.n) for r in rows)
    error_rows = sum(n for _, n in errors)
    by_owner = Counter(str(r.owner_type) for r in rows)
    return {
        "steps": len(rows),
        "steps_by_owner_type": dict(by_owner),
        "rows": total,
        "ok_rows": sum(int(r.ok) for r in rows),
        "error_rows": error_rows,
        "errors_by_class": {str(k)[:80]: n for k, n in errors},
        "calls_per_step": dict(sorted(per_step.items())),
        "max_per_step": max(per_step, default=0),
        "steps_gt1": sum(n for k, n in per_step.items() if k > 1),
        "extra_calls": total - len(rows),
        "extra_explained_by_llm_faults": error_rows,
        "steps_paid_twice": len(paid_twice),
        "steps_paid_twice_near_process_fault": explained,
        "extra_unexplained": len(paid_twice) - explained,
        "paid_twice_examples": [f"{r.owner_id}:{r.step}" for r in paid_twice[:10]],
    }


def _sim_summary(sim: dict[str, Any] | None, llm: dict[str, Any]) -> dict[str, Any]:
    if sim is None:
        return {"available": False}
    by_status: Counter[str] = Counter()
    for c in sim.get("counts", []):
        by_status[str(c["status"])] += int(c["count"])
    total = int(sim.get("total", 0))
    return {
        "calls": total,
        "by_status": dict(sorted(by_status.items())),
        # Calls the provider saw but nobody recorded (e.g. a worker killed mid-call).
        "not_in_llm_calls": total - int(llm["rows"]),
    }


# --- Kafka --------------------------------------------------------------------------------


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


def _dead_letters(
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
        "done_but_in_dlq": _sample_ids(done_but_dlq),
        "dead_lettered_not_in_dlq": _sample_ids(dead_not_in_dlq),
    }


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _outputs(settings: Settings) -> dict[str, Any]:
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


# --- Redis ---------------------------------------------------------------------------------


def _residue(settings: Settings) -> dict[str, Any]:
    """What is left in Redis once everything settled (queues, unacked, locks)."""
    prefix = settings.redis_key_prefix
    out: dict[str, Any] = {}
    try:
        broker = redis.Redis.from_url(settings.celery_broker_url, decode_responses=True)
        state = redis.Redis.from_url(settings.state_redis_url, decode_responses=True)
        try:
            queued = 0
            for key in broker.scan_iter(match=f"{prefix}*", count=1000):
                if broker.type(key) == "list":
                    queued += int(broker.llen(key))
            out["queued_messages"] = queued
            out["unacked"] = int(broker.hlen(f"{prefix}unacked"))
            kinds: Counter[str] = Counter()
            for key in state.scan_iter(match=f"{prefix}*", count=1000):
                kinds[key[len(prefix) :].split(":", 1)[0]] += 1
            out["state_keys"] = dict(sorted(kinds.items()))
        finally:
            broker.close()
            state.close()
    except redis.RedisError as exc:
        out["error"] = str(exc)
    return out


# --- memory -------------------------------------------------------------------------------


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def memory_slopes(samples: list[Sample]) -> dict[str, Any]:
    """Per component and lifetime: MB per 1,000 events (settled; accepted for the bridge)."""
    lifetimes: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for s in samples:
        for name, (pid, mb) in s.rss_mb.items():
            x = s.accepted if name == "bridge" else s.settled
            lifetimes[(name, pid)].append((s.at, float(x), mb))
    out: dict[str, Any] = {}
    for (name, pid), points in sorted(lifetimes.items()):
        entry = out.setdefault(name, {"lifetimes": [], "slope_mb_per_1000_events": None})
        steady = [p for p in points if p[0] - points[0][0] >= WARMUP_S]
        life: dict[str, Any] = {
            "pid": pid,
            "samples": len(points),
            "seconds": round(points[-1][0] - points[0][0], 1),
            "first_mb": round(points[0][2], 1),
            "last_mb": round(points[-1][2], 1),
            "peak_mb": round(max(p[2] for p in points), 1),
            "slope_mb_per_1000_events": None,
        }
        if steady:
            span = steady[-1][1] - steady[0][1]
            life["events"] = int(span)
            if len(steady) >= MIN_SAMPLES and span >= MIN_SPAN_EVENTS:
                slope = _slope([p[1] / 1000 for p in steady], [p[2] for p in steady])
                life["slope_mb_per_1000_events"] = round(slope, 3)
        entry["lifetimes"].append(life)
    for entry in out.values():
        measured = [lf for lf in entry["lifetimes"] if lf["slope_mb_per_1000_events"] is not None]
        weight = sum(lf["events"] for lf in measured)
        if weight:
            entry["slope_mb_per_1000_events"] = round(
                sum(lf["slope_mb_per_1000_events"] * lf["events"] for lf in measured) / weight, 3
            )
    return out


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
