"""Analysis through Kafka: an ``analysis.tasks`` event produced with the bridge and a worker
running, until its ``analysis_runs`` row exists, at a simulated latency L = 1 s per call (the
four analyses run in parallel, so the floor is L).  Latency ÷ L, target <= 1.2.

Beside it, in the same run and interleaved with it: the same analysis handed off by the
bench (inbox row and hand-off task, no bridge), which isolates the bridge's share; the four
requests sent straight through the SDK; and a bare Celery chord of four ``bench.noop`` and a
``bench.collect`` callback on the same worker, which the overhead (latency - L) is set
against.  Each run is split into phases from the timestamps the stack leaves behind (inbox
row, the simulator's call log, the run row).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Any

from bench import baselines
from bench.common import Stats, stop
from bench.results import Outcome, Target, paired
from bench.scenarios.analysis_common import L_MS, SEGMENTS, BareFanout, sim_calls
from bench.stack import Stack

NAME = "analysis_kafka"


def _wait_row(stack: Stack, rid: str, timeout_s: float) -> float:
    from sqlalchemy import text

    query = text("SELECT 1 FROM analysis_runs WHERE id = :id")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with stack.engine.connect() as conn:
            if conn.execute(query, {"id": rid}).first() is not None:
                return time.perf_counter()
        time.sleep(0.005)
    raise RuntimeError(f"no analysis_runs row {rid} after {timeout_s:.0f}s")


def _phases(stack: Stack, rid: str, wall0: float, seen: float, latency_ms: float) -> dict[str, Any]:
    """Where the time went (``created_at``/``completed_at``: the start of the transaction
    that wrote them)."""
    from sqlalchemy import text

    query = text(
        "SELECT e.created_at AS inbox_at, r.completed_at AS row_at, r.status "
        "FROM analysis_runs r JOIN events e ON e.event_id = r.event_id WHERE r.id = :id"
    )
    with stack.engine.connect() as conn:
        row = conn.execute(query, {"id": rid}).one()
    _, calls = sim_calls(stack.sim, 4)
    inbox_at, row_at = row.inbox_at.timestamp(), row.row_at.timestamp()
    first, last = min(calls), max(calls)
    return {
        "status": row.status,
        "phases_ms": {
            "to_inbox_row": (inbox_at - wall0) * 1000,
            "inbox_row_to_first_call": (first - inbox_at) * 1000,
            "call_start_skew": (last - first) * 1000,
            "llm_call": latency_ms,
            "last_call_end_to_row_insert": (row_at - last) * 1000 - latency_ms,
            "row_insert_to_seen": (seen - row_at) * 1000,
        },
    }


def one_run(stack: Stack, *, via_bridge: bool, latency_ms: float, timeout_s: float = 30) -> Any:
    """One analysis until its row exists.  The row cannot exist before ``latency_ms``:
    polling starts just before, to keep the bench's own load off the cores meanwhile."""
    from chimera.codec import payload_hash
    from chimera.events.ids import run_id
    from tasks.handoff import send_handoff

    event: dict[str, Any] = {
        "event_id": f"bench-{uuid.uuid4().hex}",
        "context_id": f"bench-doc-{uuid.uuid4().hex[:12]}",
        "segments": SEGMENTS,
    }
    rid = run_id(event["event_id"])
    wall0, t0 = time.time(), time.perf_counter()
    if via_bridge:
        value = json.dumps(event).encode()
        topic = stack.settings.topic_analysis_tasks
        stack.producer.send(topic, key=event["context_id"].encode(), value=value).get(10)
    else:
        payload = payload_hash(event)
        stack.inbox.accept(
            event_id=event["event_id"], kind="analysis", payload=event, payload_hash=payload
        )
        send_handoff(stack.app, "analysis", event["event_id"])
    time.sleep(max(0.0, t0 + 0.9 * latency_ms / 1000 - time.perf_counter()))
    seen = _wait_row(stack, rid, timeout_s) - t0
    return {"latency_ms": seen * 1000} | _phases(stack, rid, wall0, wall0 + seen, latency_ms)


def run(stack: Stack, quick: bool) -> Outcome:
    samples, chords = (3, 8) if quick else (5, 20)
    worker = stack.worker(16)
    bridge = stack.bridge()
    bare = BareFanout(stack.sim.url)
    try:
        stack.sim.latency(0)  # warm-up: the bridge joining its group, the first analysis
        one_run(stack, via_bridge=True, latency_ms=0, timeout_s=90)
        one_run(stack, via_bridge=False, latency_ms=0)
        stack.sim.latency(L_MS / 1000)
        kafka, handoff, fanout = [], [], []
        for _ in range(samples):  # interleaved: drift in the machine's load hits all three
            kafka.append(one_run(stack, via_bridge=True, latency_ms=L_MS))
            fanout.append(bare.sample())
            handoff.append(one_run(stack, via_bridge=False, latency_ms=L_MS))
        chord_ms = [baselines.chord_of_four(stack.app) * 1000 for _ in range(chords + 3)][3:]
    finally:
        bare.close()
        stop(bridge)
        worker.close()

    def phases(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {k: statistics.median(r["phases_ms"][k] for r in runs) for k in runs[0]["phases_ms"]}

    latency = [r["latency_ms"] for r in kafka]
    statuses = sorted({r["status"] for r in kafka + handoff})
    details = {
        "run_statuses": statuses,
        "phases_ms_median": phases(kafka),
        "from_handoff_latency_ms": Stats.of([r["latency_ms"] for r in handoff]).to_json(),
        "from_handoff_phases_ms_median": phases(handoff),
        "bare_sdk_fanout_ms": Stats.of(fanout).to_json(),
    }
    if statuses != ["ok"]:
        raise RuntimeError(f"analysis runs ended {statuses}, not all ok")
    overhead = [x - L_MS for x in latency]
    return Outcome(
        [
            paired(
                NAME,
                "Kafka to row, L = 1 s",
                "ms",
                latency,
                baseline=("L", "ms", [L_MS]),
                target=Target("<=", 1.2),
                details=details,
            ),
            paired(
                NAME,
                "overhead (latency - L)",
                "ms",
                overhead,
                baseline=("bare chord of 4 + callback", "ms", [statistics.median(chord_ms)]),
                target=None,
                details={"bare_chord_ms": Stats.of(chord_ms).to_json()},
            ),
        ],
        samples,
    )
