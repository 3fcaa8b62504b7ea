"""What must hold after every fault, checked against the real stores.

- every input event is done or dead-lettered, never both, never neither (inbox
  status, and a dead letter on the DLQ topic exactly for the dead-lettered ones);
- exactly one result row per event (conversation or analysis run), none for others;
- every result on its output topic, a record published again under the same event_id
  (``outputs``);
- LLM calls bounded: nothing paid beyond the stored steps but what a fault allows;
- no leftover queue, unacked, chord or lock keys in the stack's Redis;
- the bridge's consumer group has no lag;
- every process alive, its memory flat.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from chimera.db.tables import AnalysisRun, Conversation, ConversationTurn, Event, LLMCall
from chimera.events.ids import conversation_id, run_id
from chimera.events.letters import committed_offsets, read_dead_letters
from chimera.kafka.clients import make_consumer
from chimera.models import ANALYSIS_KINDS
from tests.reliability.harness.outputs import check_outputs
from tests.reliability.harness.stack import Stack


@dataclass
class Report:
    """The figures a fault test records (``results.jsonl``)."""

    events_in: int = 0
    done: int = 0
    dead_lettered: int = 0
    lost: int = 0
    both: int = 0
    duplicate_rows: int = 0
    dlq_records: int = 0
    dlq_duplicates: int = 0
    output_records: int = 0
    output_duplicates: int = 0
    steps_stored: int = 0
    llm_calls_ok: int = 0
    llm_calls_failed: int = 0
    llm_call_rows: int = 0
    extra_paid_calls: int = 0
    max_paid_per_step: int = 0
    leftover_keys: list[str] = field(default_factory=list)
    quiet_after_s: float = 0.0
    expiring_orphans: int = 0
    orphan_ttl_max_s: int = 0
    lag: int = 0
    rss_mib: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count_by(rows: list[Any]) -> Counter[str]:
    return Counter(r for r in rows)


def check(
    stack: Stack,
    sim: Any,
    *,
    event_ids: list[str] | None = None,
    allowed_extra_calls: int = 0,
    allowed_dead_letters: set[str] | None = None,
    rss_growth_mib: float = 60.0,
    rss_baseline: dict[str, float] | None = None,
    allow_expiring_chord_orphans: bool = False,
    quiet_timeout_s: float | None = None,
) -> Report:
    """Assert every invariant for ``event_ids`` (default: all the stack produced)."""
    ids = event_ids if event_ids is not None else stack.produced
    report = Report(events_in=len(ids))
    # First the stack must fall quiet: messages a dead worker left unacked come back
    # only past the visibility timeout, and run (as no-ops) after the events settled.
    _check_redis(stack, ids, report, allow_expiring_chord_orphans, quiet_timeout_s)
    _check_outcomes(stack, ids, report, allowed_dead_letters)
    check_outputs(stack, ids, report)
    _check_llm_calls(stack, sim, ids, report, allowed_extra_calls)
    _check_lag(stack, report)
    _check_processes(stack, report, rss_growth_mib, rss_baseline or {})
    return report


# --- outcomes ------------------------------------------------------------------------------


def _check_outcomes(stack: Stack, ids: list[str], report: Report, allowed: set[str] | None) -> None:
    with stack.engine.connect() as conn:
        events = {
            r.event_id: r
            for r in conn.execute(
                select(Event.event_id, Event.kind, Event.status).where(Event.event_id.in_(ids))
            )
        }
        conv_rows = _count_by(
            list(
                conn.execute(
                    select(Conversation.event_id).where(Conversation.event_id.in_(ids))
                ).scalars()
            )
        )
        run_rows = _count_by(
            list(
                conn.execute(
                    select(AnalysisRun.event_id).where(AnalysisRun.event_id.in_(ids))
                ).scalars()
            )
        )
        conv_status = dict(
            conn.execute(
                select(Conversation.event_id, Conversation.status).where(
                    Conversation.event_id.in_(ids)
                )
            ).all()
        )
        run_status = dict(
            conn.execute(
                select(AnalysisRun.event_id, AnalysisRun.status).where(
                    AnalysisRun.event_id.in_(ids)
                )
            ).all()
        )
    s = stack.settings
    letters = Counter(
        r.event_id
        for topic in (s.topic_conversation_dlq, s.topic_analysis_dlq)
        for r in _read(stack, topic).records
    )
    report.dlq_records = sum(letters[i] for i in ids)
    report.dlq_duplicates = sum(max(0, letters[i] - 1) for i in ids)
    problems = []
    for event_id in ids:
        event = events.get(event_id)
        status = event.status if event is not None else None
        lettered = letters[event_id] > 0
        if status == "done":
            report.done += 1
            if lettered:
                report.both += 1
                problems.append(f"{event_id}: done and on the DLQ")
        elif status == "dead_lettered":
            report.dead_lettered += 1
            if not lettered:
                problems.append(f"{event_id}: dead_lettered but not on the DLQ")
            if allowed is not None and event_id not in allowed:
                problems.append(f"{event_id}: dead-lettered unexpectedly")
        else:
            report.lost += 1
            problems.append(f"{event_id}: neither done nor dead-lettered ({status})")
            continue
        kind = event.kind
        rows = conv_rows[event_id] if kind == "conversation" else run_rows[event_id]
        report.duplicate_rows += max(0, rows - 1)
        final = conv_status.get(event_id) if kind == "conversation" else run_status.get(event_id)
        if status == "done":
            if rows != 1 or final not in ("completed", "ok", "partial"):
                problems.append(f"{event_id}: done with {rows} result rows ({final})")
        elif rows > 1 or (rows == 1 and final not in ("failed",)):
            problems.append(f"{event_id}: dead-lettered with {rows} result rows ({final})")
    assert not problems, "outcome invariants broken:\n" + "\n".join(problems)


def dead_letters(stack: Stack, topic: str) -> list[Any]:
    """Every dead letter on ``topic`` (``DeadLetterRecord``: event id, reason, headers)."""
    return list(_read(stack, topic).records)


def _read(stack: Stack, topic: str) -> Any:
    consumer = make_consumer(stack.settings, fetch_max_wait_ms=50)
    try:
        return read_dead_letters(consumer, topic)
    finally:
        consumer.close()


# --- LLM calls -------------------------------------------------------------------------------


def _check_llm_calls(
    stack: Stack, sim: Any, ids: list[str], report: Report, allowed_extra: int
) -> None:
    """Every successful provider call must have become a stored step, but the allowance.

    Stored steps: the turns of each conversation (its row's ``turn_count``) and the
    analyses that succeeded in each run.  The simulator's log counts what was paid.
    """
    cids = [conversation_id(i) for i in ids]
    rids = [run_id(i) for i in ids]
    with stack.engine.connect() as conn:
        turns = conn.execute(
            select(func.coalesce(func.sum(Conversation.turn_count), 0)).where(
                Conversation.id.in_(cids)
            )
        ).scalar_one()
        turn_rows = conn.execute(
            select(func.count()).where(ConversationTurn.conversation_id.in_(cids))
        ).scalar_one()
        bundles = conn.execute(
            select(AnalysisRun.worker_statuses).where(AnalysisRun.id.in_(rids))
        ).scalars()
        ok_parts = sum(1 for statuses in bundles for k in ANALYSIS_KINDS if _ok(statuses.get(k)))
        rows = conn.execute(
            select(func.count()).where(LLMCall.owner_id.in_(cids + rids))
        ).scalar_one()
        per_step = conn.execute(
            select(LLMCall.owner_id, LLMCall.step, func.count())
            .where(LLMCall.owner_id.in_(cids + rids), LLMCall.status == "ok")
            .group_by(LLMCall.owner_id, LLMCall.step)
        ).all()
    report.steps_stored = int(turns) + ok_parts
    report.llm_call_rows = int(rows)
    calls = sim.calls()
    report.llm_calls_ok = calls.count(status=200)
    report.llm_calls_failed = calls.total - report.llm_calls_ok
    report.extra_paid_calls = report.llm_calls_ok - report.steps_stored
    report.max_paid_per_step = max((n for *_, n in per_step), default=0)
    assert turn_rows <= turns, "more transcript rows than turns counted"
    assert report.extra_paid_calls >= 0 or report.llm_calls_ok == 0, (
        f"fewer successful calls ({report.llm_calls_ok}) than stored steps "
        f"({report.steps_stored}): the simulator's log does not cover this stack"
    )
    assert report.extra_paid_calls <= allowed_extra, (
        f"{report.extra_paid_calls} calls paid beyond the {report.steps_stored} stored steps "
        f"(allowed {allowed_extra})"
    )
    assert report.max_paid_per_step <= 1 + allowed_extra


def _ok(status: Any) -> bool:
    if isinstance(status, dict):
        return status.get("status") == "ok"
    return status == "ok"


# --- Redis -----------------------------------------------------------------------------------


def leftover_keys(stack: Stack, ids: list[str]) -> list[tuple[str, int]]:
    """Queue, unacked, chord and lock keys still present, and state of settled work,
    each with its TTL in seconds (-1: none, it would stay for ever)."""
    s = stack.settings
    prefix = s.redis_key_prefix
    forbidden: list[tuple[str, int]] = []
    conv_ids = {conversation_id(i) for i in ids}
    failed = set()
    with stack.engine.connect() as conn:
        failed = set(
            conn.execute(
                select(Conversation.id).where(
                    Conversation.id.in_(conv_ids), Conversation.status == "failed"
                )
            ).scalars()
        )
    for db in sorted({s.redis_broker_db, s.redis_result_db, s.redis_state_db}):
        client = stack.redis.client(db)
        try:
            for raw in client.scan_iter(count=1_000):
                key = raw.decode(errors="replace")
                name = key.removeprefix(prefix)
                if _forbidden(name, client, raw, failed, s.celery_queue):
                    forbidden.append((f"db{db}:{key}", int(client.ttl(raw))))
        finally:
            client.close()
    return sorted(forbidden)


def _forbidden(name: str, client: Any, raw: bytes, failed: set[str], queue: str) -> bool:
    if name == queue or name.startswith(queue + "\x06\x16"):
        return bool(client.llen(raw))  # a queue with messages still in it
    if name in ("unacked", "unacked_index"):
        return bool(client.hlen(raw) if name == "unacked" else client.zcard(raw))
    if "chord-unlock" in name:
        return True
    if name.startswith("celery-taskset-meta-") and name[-2:] in (".j", ".t", ".s", ".d"):
        return True  # a chord's join list, counters or claim: a chord not finished (".c",
        # its completion marker, expires by itself)
    if name.startswith("conv:"):
        cid = name.split("{", 1)[-1].split("}", 1)[0]
        # A failed conversation keeps its state (and stored turns) for a replay.
        return name.endswith(":lock") or cid not in failed
    return name.startswith("analysis:")  # kept results of a run not yet recorded


def _check_redis(
    stack: Stack, ids: list[str], report: Report, allow_orphans: bool, timeout_s: float | None
) -> None:
    """No leftovers once the stack is quiet (waited for, up to the visibility timeout and
    more); with ``allow_orphans``, bookkeeping of a chord whose size key was lost (Redis
    wiped under it) may stay while it expires by itself."""
    started = time.monotonic()
    deadline = started + (timeout_s or stack.settings.visibility_timeout_s + 45)
    while True:
        found = leftover_keys(stack, ids)
        orphans = [(k, ttl) for k, ttl in found if "celery-taskset-meta-" in k and ttl > 0]
        left = [k for k, ttl in found if not (allow_orphans and (k, ttl) in orphans)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    report.quiet_after_s = round(time.monotonic() - started, 1)
    report.expiring_orphans = len(orphans)
    report.orphan_ttl_max_s = max((ttl for _, ttl in orphans), default=0)
    report.leftover_keys = left
    assert not left, f"leftover keys after {report.quiet_after_s}s: {found}"


# --- Kafka -----------------------------------------------------------------------------------


def consumer_lag(stack: Stack) -> int:
    """Records of the input topics the bridge's group has not committed past."""
    s = stack.settings
    consumer = make_consumer(s, group_id=s.kafka_consumer_group_id, fetch_max_wait_ms=50)
    lag = 0
    try:
        for topic in (s.topic_conversation_new, s.topic_analysis_tasks):
            scan = read_dead_letters(consumer, topic)  # reads any topic to its true end
            committed = committed_offsets(consumer, scan)
            lag += sum(end - (committed.get(p) or 0) for p, end in scan.ends.items())
    finally:
        consumer.close()
    return lag


def _check_lag(stack: Stack, report: Report) -> None:
    report.lag = consumer_lag(stack)
    assert report.lag == 0, f"the bridge's group lags by {report.lag} records"


# --- processes --------------------------------------------------------------------------------


def _check_processes(
    stack: Stack, report: Report, growth_mib: float, baseline: dict[str, float]
) -> None:
    """Every process the test did not kill on purpose runs, unpaused, its memory flat."""
    for proc in stack.processes:
        if proc.killed:
            continue
        proc.assert_alive()
        assert not proc.paused, f"{proc.name} was left paused"
        proc.rss_mib()
        report.rss_mib[proc.name] = [round(x, 1) for x in proc.rss_samples]
        start = baseline.get(proc.name)
        if start is not None and not math.isnan(start):
            growth = proc.rss_samples[-1] - start
            assert growth < growth_mib, f"{proc.name} grew by {growth:.1f} MiB"
