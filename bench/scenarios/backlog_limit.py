"""A backlog at the provider's limit: conversations entered through Kafka (``conversation.new``,
the bridge, two worker processes), many more than the limit lets run within one
``CONVERSATION_TIMEOUT_SECONDS`` (set to 20 s here; the backlog lasts over a minute, at least
three times that).  ``MAX_CONVERSATION_TURNS`` is the conversations' own 6 turns, so the
admission cap is the one derived from the limits (``CHIMERA_MAX_RUNNING_CONVERSATIONS`` unset).

* **at the limit** (Chimera's limit = the simulator's, R req/min per provider, one model each):
  utilisation over the busy window (the calls the simulator answered in the whole minutes
  from the first call while the backlog lasted, per minute ÷ R x the two models, target
  >= 0.95); conversations complete in full (completed with all their turns, ÷ those sent,
  target 1); 429s answered (target 0); LLM calls answered ÷ turns taken (target 1;
  a conversation that fails short of its turns has taken some).
* **limit set too high** (Chimera's limit 4 x the simulator's): 429s answered after the first
  minute from the first call (target 0: the provider's answers have taught the fleet its real
  limit by then) and conversations complete in full (target 1).  The details say how long
  the backlog lasted (``backlog_s``): no 429 after the first minute proves nothing if the
  backlog was over before it (its conversations cut short while the fleet waited).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from bench.common import delete_keys, stop
from bench.results import Outcome, Row, Target, paired
from bench.stack import TURNS, Stack

NAME = "backlog_limit"
TIMEOUT_S = 20  # CONVERSATION_TIMEOUT_SECONDS for the bench
LATENCY_S = 0.5  # per simulated call: the derived cap's conversations go just over the limit
RPM = 120  # per provider, Chimera's and the simulator's (per model) in the first run
LOW_RPM = 60  # the simulator's in the second run, where Chimera is told 4 x that
MODELS = 2  # the default participants: one Anthropic and one Gemini model
WINDOW_S = 60.0


@dataclass
class Run:
    """What one backlog did, from the simulator's call log and the database."""

    sent: int
    finished: bool
    complete: int
    turns: int
    taken: int
    calls: list[dict[str, Any]]
    total: int
    cap: int

    @property
    def first(self) -> float:
        return min(float(c["ts"]) for c in self.calls)

    @property
    def answered(self) -> list[float]:
        return sorted(float(c["ts"]) for c in self.calls if c["status"] == 200)

    def limited(self, after_s: float = 0.0) -> int:
        return sum(
            1 for c in self.calls if c["status"] == 429 and float(c["ts"]) >= self.first + after_s
        )

    def busy_window_s(self) -> float:
        """Whole minutes from the first call to the last answered one (the backlog was still
        waiting through them); the span itself if shorter than a minute."""
        span = self.answered[-1] - self.first
        return WINDOW_S * math.floor(span / WINDOW_S) or span

    def per_minute(self) -> float:
        window = self.busy_window_s()
        inside = [t for t in self.answered if t < self.first + window]
        return len(inside) / (window / 60)


def _produce(stack: Stack, n: int) -> list[str]:
    """``n`` conversation requests on ``conversation.new``; their conversation ids."""
    from chimera.events.ids import conversation_id

    events = [stack.conversation_event() for _ in range(n)]
    topic = stack.settings.topic_conversation_new
    futures = [
        stack.producer.send(topic, key=e["event_id"].encode(), value=json.dumps(e).encode())
        for e in events
    ]
    stack.producer.flush(60)
    for future in futures:
        future.get(10)
    return [conversation_id(e["event_id"]) for e in events]


def _complete_in_full(stack: Stack, cids: list[str]) -> tuple[int, int, int]:
    """Conversations completed with all their requested turns, the turns stored, and the
    turns taken (those of conversations that failed short of ``min_turns`` too)."""
    from sqlalchemy import text

    full = text(
        "SELECT count(*) FROM conversations c WHERE c.id = ANY(:ids) AND c.status = 'completed' "
        "AND (SELECT count(*) FROM conversation_turns t WHERE t.conversation_id = c.id) "
        ">= c.min_turns"
    )
    taken = text("SELECT coalesce(sum(turn_count), 0) FROM conversations WHERE id = ANY(:ids)")
    with stack.engine.connect() as conn:
        complete = int(conn.execute(full, {"ids": cids}).scalar_one())
        turns = int(conn.execute(taken, {"ids": cids}).scalar_one())
    return complete, stack.turns(cids), turns


def _backlog(stack: Stack, n: int, *, sim_rpm: int, chimera_rpm: int, wait_s: float) -> Run:
    """``n`` conversations through Kafka with the simulator at ``sim_rpm`` per model and
    Chimera told ``chimera_rpm`` per provider; waits for them (at most ``wait_s``)."""
    from chimera.conversation.admission import running_cap

    env = {
        "RATE_LIMIT_REQUESTS_PER_MINUTE": str(chimera_rpm),
        "CONVERSATION_TIMEOUT_SECONDS": str(TIMEOUT_S),
        "MAX_CONVERSATION_TURNS": str(TURNS),
    }
    settings = stack.settings.model_copy(
        update={
            "rate_limit_requests_per_minute": chimera_rpm,
            "conversation_timeout_seconds": TIMEOUT_S,
            "max_conversation_turns": TURNS,
        }
    )
    stack.sim.latency(LATENCY_S)
    stack.sim.configure(limits={"rpm": sim_rpm})
    stack.sim.reset()
    # Earlier runs' calls and admissions (workers killed mid-conversation) start empty.
    for part in ("llm", "admission"):
        delete_keys(stack.settings, stack.settings.redis_key(part, "*"))
    workers = stack.workers([stack.settings.celery_concurrency] * 2, **env)
    bridge = stack.bridge(**env)
    finished = False
    try:
        cids = _produce(stack, n)
        try:
            stack.wait_done(cids, wait_s, poll_s=0.5)
            finished = True
        except RuntimeError as exc:
            print(f"   {NAME}: {exc}", flush=True)
        time.sleep(1)  # the last calls' accounting lands
        log = stack.sim.calls(10_000)
        complete, stored, taken = _complete_in_full(stack, cids)
    finally:
        stop(bridge)
        for worker in workers:
            worker.kill()  # anything unfinished is past the measurement
        stack.sim.configure(limits={"rpm": None})
        stack.sim.reset()
    if not log["calls"]:
        raise RuntimeError("no LLM call reached the simulator")
    if len(log["calls"]) < log["total"]:
        raise RuntimeError(f"the simulator kept {len(log['calls'])} of {log['total']} calls")
    cap = running_cap(settings)
    return Run(n, finished, complete, stored, taken, log["calls"], log["total"], cap)


def _at_limit(run: Run) -> list[Row]:
    limit = RPM * MODELS
    answered = len(run.answered)
    details = {
        "rpm_per_provider": RPM,
        "conversations_sent": run.sent,
        "turns_each": TURNS,
        "timeout_s": TIMEOUT_S,
        "latency_s": LATENCY_S,
        "admission_cap": run.cap,
        "busy_window_s": run.busy_window_s(),
        "backlog_s": round(run.answered[-1] - run.first, 1),
        "all_finished": run.finished,
        "calls_total": run.total,
        "turns_stored": run.turns,
    }
    if not run.taken:
        raise RuntimeError("no turn was taken")
    return [
        paired(
            NAME,
            "utilisation over the busy window",
            "req/min",
            [run.per_minute()],
            baseline=("configured limit", "req/min", [float(limit)]),
            target=Target(">=", 0.95),
            details=details,
        ),
        paired(
            NAME,
            "conversations complete in full",
            "",
            [float(run.complete)],
            baseline=("conversations sent", "", [float(run.sent)]),
            target=Target(">=", 1.0),
        ),
        paired(
            NAME,
            "429s received",
            "",
            [float(run.limited())],
            baseline=("calls made", "", [float(run.total)]),
            target=Target("<=", 0, on="figure"),
        ),
        paired(
            NAME,
            "LLM calls answered",
            "",
            [float(answered)],
            baseline=("turns taken", "", [float(run.taken)]),
            target=Target("==", 1.0),
        ),
    ]


def _too_high(run: Run) -> list[Row]:
    details = {
        "simulator_rpm_per_model": LOW_RPM,
        "configured_rpm_per_provider": 4 * LOW_RPM,
        "conversations_sent": run.sent,
        "admission_cap": run.cap,
        "429s_in_all": run.limited(),
        "answered_per_min_over_busy_window": run.per_minute(),
        "backlog_s": round(run.answered[-1] - run.first, 1),
        "all_finished": run.finished,
        "llm_calls_answered": len(run.answered),
        "turns_taken": run.taken,
        "turns_stored": run.turns,
    }
    return [
        paired(
            NAME,
            "limit 4x too high: 429s after the first minute",
            "",
            [float(run.limited(after_s=WINDOW_S))],
            baseline=("calls made", "", [float(run.total)]),
            target=Target("<=", 0, on="figure"),
            details=details,
        ),
        paired(
            NAME,
            "limit 4x too high: conversations complete in full",
            "",
            [float(run.complete)],
            baseline=("conversations sent", "", [float(run.sent)]),
            target=Target(">=", 1.0),
        ),
    ]


def run(stack: Stack, quick: bool) -> Outcome:
    # A little over a minute's calls at the (real) limit each, so both backlogs last past
    # their first minute: 300 (270) calls at 240/min, then 144 at 120/min.
    n, n_low = (45, 24) if quick else (50, 24)
    at_limit = _backlog(stack, n, sim_rpm=RPM, chimera_rpm=RPM, wait_s=240)
    too_high = _backlog(stack, n_low, sim_rpm=LOW_RPM, chimera_rpm=4 * LOW_RPM, wait_s=240)
    return Outcome(_at_limit(at_limit) + _too_high(too_high), 1)
