"""The budget reservation script and the job control state, on real Redis and Postgres."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from chimera.db.tables import JobStatus
from chimera.errors import BudgetExhausted, JobConflict, NotFound
from chimera.jobs.budget import NANO, JobBudgets, nano
from chimera.jobs.control import ControlState, JobControl, after_budget, target_of
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import control_job, update_budget
from chimera.llm.pricing import PriceTable
from chimera.llm.types import CallMeta, LLMRequest, Message

JOB = "job-budget-test"
SPEC = {"name": "b", "participants": [], "min_turns": 1, "max_turns": 2, "budget_usd": 0.5}


def _job(db: Any, job_id: str = JOB, spec: dict[str, Any] = SPEC) -> JobRepository:
    repo = JobRepository(db)
    assert repo.create(job_id, spec, [{"title": "Cars"}], 1)
    return repo


def _budgets(redis_client: Any, redis_ns: Any, repo: JobRepository) -> JobBudgets:
    control = JobControl(redis_client, redis_ns, repo.control_row)
    return JobBudgets(redis_client, redis_ns, control, PriceTable.load(), repo.spent)


def test_concurrent_reservations_never_pass_the_budget(
    redis_client: Any, redis_ns: Any, db: Any
) -> None:
    budgets = _budgets(redis_client, redis_ns, _job(db))
    budget, amount = 1_000_000, 7_000  # nano-USD: 142 fit
    held: list[Any] = []
    refused: list[BudgetExhausted] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            try:
                h = budgets.reserve_amount(JOB, amount, budget)
            except BudgetExhausted as exc:
                with lock:
                    refused.append(exc)
                continue
            with lock:
                held.append(h)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == budget // amount == 142 and len(refused) == 200 - 142
    assert "would pass its budget" in refused[0].message and refused[0].job_id == JOB
    fig = budgets.figures(JOB)
    assert fig is not None and fig.spent == 0 and fig.reserved == 142 * amount <= budget
    # Settling turns a reservation into what the call cost; it returns the difference.
    assert budgets.settle_amount(held[0], 2_000) == 2_000 - amount
    fig = budgets.figures(JOB)
    assert fig is not None and fig.spent == 2_000 and fig.reserved == 141 * amount
    # Up to the budget exactly, then nothing more.
    budgets.reserve_amount(JOB, budget - 2_000 - 141 * amount, budget)
    with pytest.raises(BudgetExhausted):
        budgets.reserve_amount(JOB, 1, budget)


def test_spent_is_rebuilt_from_llm_calls_when_redis_lost_it(
    redis_client: Any, redis_ns: Any, db: Any
) -> None:
    repo = _job(db)
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO conversations (id, event_id, topic_title, topic, participants,"
                " min_turns, max_turns, status, job_id) VALUES ('c1', 'e1', 'Cars', '{}', '[]',"
                " 1, 2, 'running', :j)"
            ),
            {"j": JOB},
        )
        for i, cost in enumerate(("0.1", "0.25")):
            conn.execute(
                text(
                    "INSERT INTO llm_calls (call_id, provider, model, task, owner_type, owner_id,"
                    " status, input_tokens, output_tokens, latency_ms, cost_usd, attempt)"
                    " VALUES (:id, 'anthropic', 'm', 'turn', 'conversation', 'c1', 'ok', 1, 1,"
                    " 1, :cost, 1)"
                ),
                {"id": f"call-{i}", "cost": cost},
            )
    assert repo.spent(JOB) == Decimal("0.35")
    budgets = _budgets(redis_client, redis_ns, repo)
    h = budgets.reserve_amount(JOB, nano(0.1), nano(0.5))
    fig = budgets.figures(JOB)
    assert fig is not None and (fig.spent, fig.reserved) == (nano(0.35), nano(0.1))
    with pytest.raises(BudgetExhausted):
        budgets.reserve_amount(JOB, nano(0.06), nano(0.5))
    redis_client.delete(budgets.key(JOB))  # Redis lost it
    budgets.settle_amount(h, nano(0.05))  # a settle after the loss: counted by the rebuild
    assert budgets.figures(JOB) is None
    budgets.reserve_amount(JOB, nano(0.1), nano(0.5))
    fig = budgets.figures(JOB)
    assert fig is not None and fig.spent == nano(0.35) and fig.reserved == nano(0.1)


def test_the_guard_prices_the_worst_case_and_ignores_calls_of_no_job(
    redis_client: Any, redis_ns: Any, db: Any
) -> None:
    budgets = _budgets(redis_client, redis_ns, _job(db))
    prices = PriceTable.load()
    msg = (Message(role="user", content="hi"),)
    plain = LLMRequest(provider="anthropic", model="claude-sonnet-5-5", messages=msg)
    assert budgets.reserve(plain, 100) is None
    ours = plain.model_copy(update={"meta": CallMeta(job_id=JOB), "max_output_tokens": 1000})
    hold = budgets.reserve(ours, 100)
    worst = prices.cost("anthropic", "claude-sonnet-5-5", 100, 1000)
    assert hold is not None and hold.amount == nano(worst) > 0
    budgets.settle(hold, 100, 10, ours)
    fig = budgets.figures(JOB)
    assert fig is not None and fig.reserved == 0
    assert fig.spent == nano(prices.cost("anthropic", "claude-sonnet-5-5", 100, 10))
    assert Decimal(fig.spent) / NANO < worst


def test_controls_move_postgres_and_redis_and_refuse_what_is_not_allowed(
    redis_client: Any, redis_ns: Any, db: Any
) -> None:
    repo = _job(db)
    control = JobControl(redis_client, redis_ns, repo.control_row)
    assert control.state(JOB) == ControlState("pending", 0.5)  # rebuilt from Postgres
    assert control_job(repo, control, JOB, "pause").status == "paused"
    assert control.status(JOB) == "paused"
    with pytest.raises(JobConflict) as refused:
        control_job(repo, control, JOB, "pause")
    assert refused.value.status == "paused" and "cannot pause a job that is paused" in str(
        refused.value
    )
    assert control_job(repo, control, JOB, "resume").status == "running"
    control.forget(JOB)
    assert control.status(JOB) == "running"
    with pytest.raises(NotFound):
        control_job(repo, control, "job-none", "drain")
    # Out of budget: a raise with room moves it back to running.
    assert repo.move(JOB, "running", JobStatus.BUDGET_EXHAUSTED)
    with pytest.raises(JobConflict):
        control_job(repo, control, JOB, "resume")
    job = update_budget(repo, control, JOB, 2.0)
    assert job.status == "running" and job.spec["budget_usd"] == 2.0
    assert control.state(JOB) == ControlState("running", 2.0)
    assert control_job(repo, control, JOB, "cancel").status == "cancelled"
    with pytest.raises(JobConflict):
        update_budget(repo, control, JOB, 3.0)


def test_the_transition_table() -> None:
    assert target_of("drain", "paused") == JobStatus.DRAINING
    for status in ("completed", "cancelled", "failed"):
        with pytest.raises(JobConflict):
            target_of("cancel", status)
    with pytest.raises(ValueError, match="unknown control"):
        target_of("stop", "running")
    assert after_budget("budget_exhausted", 2.0, 1.0) == JobStatus.RUNNING
    assert after_budget("budget_exhausted", 1.0, 1.0) is None
    assert after_budget("running", 1.0, 5.0) is None
