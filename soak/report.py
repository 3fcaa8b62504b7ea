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

import time
from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import redis
from sqlalchemy import Engine, text

from chimera.settings import Settings
from soak.faults import PROCESS_FAULTS, FaultRecord
from soak.memory import memory_slopes
from soak.monitor import Sample, UnexpectedExit
from soak.outputs import dead_letters, output_counts, sample_ids
from soak.workload import Record


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
    dlq = dead_letters(settings, placed, poison, inbox)
    outputs = output_counts(settings)
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
        "missing_from_inbox": sample_ids(missing),
        "stuck": {s: statuses.get(s, 0) for s in ("received", "dispatched")},
        "stuck_ids": sample_ids(stuck),
        "done_without_result": sample_ids(without_result),
        "inbox_rows_not_published": len(set(inbox) - set(valid)),
        "reconciler_attempts": dict(
            sorted(Counter(int(inbox[e].attempts) for e in valid if e in inbox).items())
        ),
    }


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
        "conversations_with_repeated_turns": sample_ids(repeated),
        "completed_with_turn_gaps": sample_ids(gap_ids),
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


# --- Redis
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


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
