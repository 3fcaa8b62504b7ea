"""A job that runs out of budget: created as ``chimera jobs create`` and ``POST /jobs`` create
it (``chimera.jobs.service.create_job``) with a small ``budget_usd`` and more topics than it
pays for, run by two worker processes of several threads each (the bridge takes its events
from ``conversation.new``, the bench sends the feeder's task as beat would) against the
simulator, at most one conversation per thread running at once
(``CHIMERA_MAX_RUNNING_CONVERSATIONS``); then its budget is raised (``update_budget``, as
``chimera jobs update`` does).

Each LLM call reserves its worst case before it is made (``chimera/jobs/budget.py``: its
estimated input tokens and its ``max_output_tokens`` at the price table's rates), so the
spend can pass the budget by at most what is in flight when the budget is reached: one
call per worker thread, each at most the worst-case call.

* **spend when stopped**: the job's ``llm_calls`` cost once it is ``budget_exhausted`` and
  its calls in flight have settled, ÷ its ``budget_usd``.  No target (the reservations
  make it stop short of the budget by up to the in-flight bound).
* **overshoot**: spend - budget (negative: it stopped under its budget) ÷ the in-flight
  bound, worker threads x the worst-case call (the largest reservation among the turns of
  the job's completed conversations, re-priced as the budget prices it).  Target <= 1.
* **stopped at budget_exhausted**: 1 if the job's status was ``budget_exhausted`` (target 1).
* **runs again after the raise**: conversations of the job finished after the budget was
  raised, beyond those finished before (target >= 1).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from bench.common import delete_keys, stop
from bench.results import Outcome, Row, Target, paired
from bench.stack import TURNS, Stack

NAME = "budget_overshoot"
THREADS = 8  # per worker process
PROCESSES = 2
LATENCY_S = 0.3  # per simulated call: many calls are in flight when the budget is reached
FEED_EVERY_S = 1.0  # the feeder's round (beat's CHIMERA_JOBS_FEED_INTERVAL_S)
WAIT_S = 90.0  # for each phase
TOPICS = 100
BUDGET_USD = 0.25
RAISED_USD = 0.4


class _Job:
    """The job under test and the clients that read and control it."""

    def __init__(self, stack: Stack, job_id: str) -> None:
        from chimera.jobs.budget import JobBudgets
        from chimera.jobs.control import JobControl
        from chimera.jobs.repository import JobRepository
        from chimera.llm.pricing import PriceTable
        from chimera.redis_client import make_redis

        self.stack = stack
        self.id = job_id
        self.repo = JobRepository(stack.engine)
        self.redis = make_redis(stack.settings)
        self.control = JobControl(self.redis, stack.settings, self.repo.control_row)
        self.prices = PriceTable.load()
        self.budgets = JobBudgets(
            self.redis, stack.settings, self.control, self.prices, self.repo.spent
        )

    def status(self) -> str:
        job = self.repo.get(self.id)
        assert job is not None
        return job.status

    def finished(self) -> int:
        job = self.repo.get(self.id)
        assert job is not None
        return job.figures.finished

    def reserved(self) -> int:
        spend = self.budgets.figures(self.id)
        return 0 if spend is None else spend.reserved

    def feed(self) -> None:
        """One feeder round, as beat sends it."""
        self.stack.app.send_task("chimera.jobs.feed", ignore_result=True)

    def wait_settled(self, statuses: set[str], timeout_s: float) -> tuple[str, float]:
        """Feed until the job is in one of ``statuses`` with nothing reserved and its spend
        unchanged over two rounds; its status and the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        last: Decimal | None = None
        while time.monotonic() < deadline:
            self.feed()
            time.sleep(FEED_EVERY_S)
            status, spent = self.status(), self.repo.spent(self.id)
            if status in statuses and self.reserved() == 0 and spent == last:
                return status, time.monotonic() - t0
            last = spent if status in statuses else None
        raise RuntimeError(
            f"job {self.id} still {self.status()} after {timeout_s:.0f}s "
            f"({self.finished()} conversations finished)"
        )

    def worst_call_usd(self) -> Decimal:
        """The largest worst case reserved for a turn of the job's completed conversations:
        each turn's request rebuilt from the stored conversation, priced as the budget
        prices it (estimated input tokens, ``max_output_tokens``)."""
        from sqlalchemy import text

        from chimera.conversation.prompts import turn_request
        from chimera.conversation.state import ConversationState
        from chimera.llm.calls import estimate_input_tokens

        settings = self.stack.settings
        conversations = text(
            "SELECT id, event_id, topic, participants, min_turns, max_turns, metadata "
            "FROM conversations WHERE job_id = :j AND status = 'completed'"
        )
        turns = text(
            "SELECT turn_index, speaker, provider, model, content FROM conversation_turns "
            "WHERE conversation_id = :c ORDER BY turn_index"
        )
        worst = Decimal(0)
        with self.stack.engine.connect() as conn:
            for c in conn.execute(conversations, {"j": self.id}).mappings().all():
                stored = [dict(t) for t in conn.execute(turns, {"c": c["id"]}).mappings().all()]
                state = ConversationState.model_validate(
                    {
                        "conversation_id": c["id"],
                        "event_id": c["event_id"],
                        "topic": c["topic"],
                        "participants": c["participants"],
                        "min_turns": c["min_turns"],
                        "max_turns": c["max_turns"],
                        "metadata": c["metadata"],
                        "turns": stored,
                    }
                )
                for t in stored:
                    request = turn_request(
                        state, t["turn_index"], max_output_tokens=settings.turn_max_output_tokens
                    )
                    cost = self.prices.cost(
                        request.provider,
                        request.model,
                        estimate_input_tokens(request),
                        request.max_output_tokens,
                    )
                    worst = max(worst, cost)
        if worst == 0:
            raise RuntimeError(f"job {self.id}: no completed conversation to price a call by")
        return worst

    def close(self) -> None:
        self.redis.close()


def _create(stack: Stack, topics: int, budget: float) -> str:
    from chimera.jobs.repository import JobRepository
    from chimera.jobs.service import create_job, inline_topics

    spec = {
        "name": f"bench-budget-{time.strftime('%H%M%S')}",
        "min_turns": TURNS,
        "max_turns": TURNS,
        "budget_usd": budget,
    }
    titles = [f"Should town {i} pay for its libraries with a parking levy?" for i in range(topics)]
    made = create_job(
        JobRepository(stack.engine), stack.producer, stack.settings, spec, inline_topics(titles)
    )
    return made.job.id


def _rows(f: dict[str, Any]) -> list[Row]:
    threads = PROCESSES * THREADS
    bound = threads * f["worst_call_usd"]
    overshoot = f["spent_usd"] - f["budget_usd"]
    details = {
        "topics": f["topics"],
        "turns_each": TURNS,
        "worker_threads": threads,
        "latency_s": LATENCY_S,
        "worst_call_usd": f["worst_call_usd"],
        "in_flight_bound_usd": bound,
        "status_when_stopped": f["status"],
        "seconds_to_stop": round(f["seconds_to_stop"], 1),
        "finished_when_stopped": f["finished_before"],
        "raised_budget_usd": f["raised_usd"],
        "status_after_raise": f["status_after"],
        "finished_after_raise": f["finished_after"],
        "spent_after_raise_usd": f["spent_after_usd"],
    }
    return [
        paired(
            NAME,
            "spend when stopped",
            "USD",
            [f["spent_usd"]],
            baseline=("budget_usd", "USD", [f["budget_usd"]]),
            target=None,
            details=details,
        ),
        paired(
            NAME,
            "overshoot (spend - budget)",
            "USD",
            [overshoot],
            baseline=(f"in flight: {threads} threads x worst call", "USD", [bound]),
            target=Target("<=", 1.0),
        ),
        paired(
            NAME,
            "stopped at budget_exhausted",
            "",
            [1.0 if f["status"] == "budget_exhausted" else 0.0],
            baseline=("jobs run", "", [1.0]),
            target=Target("==", 1.0),
        ),
        paired(
            NAME,
            "conversations finished after the raise",
            "",
            [float(f["finished_after"] - f["finished_before"])],
            baseline=("finished before it", "", [float(max(f["finished_before"], 1))]),
            target=Target(">=", 1, on="figure"),
        ),
    ]


def run(stack: Stack, quick: bool) -> Outcome:
    from chimera.jobs.service import update_budget

    # A conversation costs about 0.008 USD here and a turn reserves at most about 0.006 USD,
    # so 16 threads hold about 0.09 USD: the budget stops the job after a few rounds of
    # conversations, the raise lets a few more finish.  About 20 s; --quick runs the same.
    topics, budget, raised = TOPICS, BUDGET_USD, RAISED_USD
    stack.sim.latency(LATENCY_S)
    stack.sim.reset()
    for part in ("llm", "admission"):
        delete_keys(stack.settings, stack.settings.redis_key(part, "*"))
    # As many conversations run at once as there are threads (the others wait in admission's
    # line), so conversations complete while the budget lasts.
    # The workers' feed interval is the round this scenario sends the feed at (each round
    # takes a gate for most of its interval, so one sent sooner would be turned away).
    running = {
        "CHIMERA_MAX_RUNNING_CONVERSATIONS": str(PROCESSES * THREADS),
        "CHIMERA_JOBS_FEED_INTERVAL_S": str(FEED_EVERY_S),
    }
    workers = stack.workers([THREADS] * PROCESSES, **running)
    bridge = stack.bridge(**running)
    job = _Job(stack, _create(stack, topics, budget))
    try:
        status, seconds = job.wait_settled({"budget_exhausted", "completed"}, WAIT_S)
        figures: dict[str, Any] = {
            "topics": topics,
            "budget_usd": budget,
            "status": status,
            "seconds_to_stop": seconds,
            "spent_usd": float(job.repo.spent(job.id)),
            "finished_before": job.finished(),
            "raised_usd": raised,
        }
        update_budget(job.repo, job.control, job.id, raised)
        status_after, _ = job.wait_settled({"budget_exhausted", "completed"}, WAIT_S)
        figures |= {
            "status_after": status_after,
            "finished_after": job.finished(),
            "spent_after_usd": float(job.repo.spent(job.id)),
            "worst_call_usd": float(job.worst_call_usd()),
        }
    finally:
        stop(bridge)
        for worker in workers:
            worker.kill()  # anything unfinished is past the measurement
        job.close()
        stack.sim.reset()
    return Outcome(_rows(figures), 1)
