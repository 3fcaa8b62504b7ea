"""Budgets and controls with a real worker, the bridge, Kafka and the LLM simulator.

The test plays beat's part: it runs the feeder (``feed_job`` with the worker's control
state) and hands the conversations it resumes back, as ``chimera.jobs.feed`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from chimera.jobs.feed import feed_job
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.service import control_job, create_job, inline_topics, update_budget
from chimera.kafka.clients import make_producer
from chimera.settings import Settings
from tasks.handoff import send_handoff
from tasks.runtime import Runtime, runtime
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION
from tests.helpers import wait_for
from tests.tasks import conftest as task_fixtures
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)
run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app
flow = task_fixtures.flow
session_topics = task_fixtures.session_topics

PAIR = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5", "name": "Ana"},
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben"},
]
TOPICS = ["Cars", "Bikes", "Trains", "Boats"]


@pytest.fixture
def producer(kafka_topics: Settings) -> Iterator[Any]:
    p = make_producer(kafka_topics)
    yield p
    p.close(timeout=5)


@pytest.fixture
def setup(flow: Flow, kafka_topics: Settings, run_bridge: Any, producer: Any) -> Any:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"jobs-{kafka_topics.topic_conversation_new}"}
    )
    return s, JobRepository(flow.engine), runtime()


def _feed(
    flow: Flow, repo: JobRepository, producer: Any, s: Settings, rt: Runtime, jid: str
) -> StoredJob:
    """One feeding round, as beat runs it; the job after it."""
    job = repo.get(jid)
    assert job is not None
    report = feed_job(repo, producer, s, job, rt.job_control)
    for event_id in report.resumed:
        send_handoff(flow.app, "conversation", event_id)
    job = repo.get(jid)
    assert job is not None
    return job


def _until(
    flow: Flow,
    repo: JobRepository,
    producer: Any,
    s: Settings,
    rt: Runtime,
    jid: str,
    ok: Any,
    what: str,
) -> StoredJob:
    found: list[StoredJob] = []

    def check() -> bool:
        job = _feed(flow, repo, producer, s, rt, jid)
        found[:] = [job]
        return bool(ok(job))

    wait_for(check, timeout_s=180, interval_s=0.3, what=what)
    return found[0]


def _all_parked(rt: Runtime, jid: str, n: int) -> Any:
    return lambda job: job.figures.started == n and len(rt.job_control.parked(jid)) == n


def _calls(db: Any, jid: str) -> tuple[int, Decimal]:
    with db.connect() as conn:
        n, cost = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(cost_usd), 0) FROM llm_calls WHERE owner_id IN"
                " (SELECT id FROM conversations WHERE job_id = :j)"
            ),
            {"j": jid},
        ).one()
    return int(n), Decimal(cost)


def test_a_budget_stops_spending_and_a_raise_resumes_the_job(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any
) -> None:
    s, repo, rt = setup
    budget = 0.005  # a call's worst case is ~0.0045 USD: a few calls fit, not 8
    spec = {"name": "b", "min_turns": 2, "max_turns": 2, "participants": PAIR, "budget_usd": budget}
    jid = create_job(repo, producer, s, spec, inline_topics(TOPICS)).job.id
    run_bridge(s)
    job = _until(
        flow, repo, producer, s, rt, jid,
        lambda j: j.status == "budget_exhausted" and j.figures.running
        == len(rt.job_control.parked(jid)) and j.figures.started == 4,
        "the job to run out of budget with its conversations parked",
    )  # fmt: skip
    calls, spent = _calls(flow.engine, jid)
    assert job.figures.failed == 0 and job.figures.completed < 4 and calls < 8
    # Every call was reserved at its worst case first: nothing passed the budget.
    assert spent <= Decimal(str(budget))
    assert _feed(flow, repo, producer, s, rt, jid).status == "budget_exhausted"
    assert _calls(flow.engine, jid)[0] == calls  # parked: no call since

    assert update_budget(repo, rt.job_control, jid, 1.0).status == "running"
    job = _until(
        flow, repo, producer, s, rt, jid, lambda j: j.status == "completed", "the job to complete"
    )
    assert job.figures.completed == 4 and job.figures.failed == 0
    assert _calls(flow.engine, jid)[0] == 8  # each turn paid once


def test_pause_parks_resume_continues(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any
) -> None:
    s, repo, rt = setup
    spec = {"name": "p", "min_turns": 3, "max_turns": 3, "participants": PAIR}
    jid = create_job(repo, producer, s, spec, inline_topics(TOPICS[:3])).job.id
    assert control_job(repo, rt.job_control, jid, "pause").status == "paused"
    run_bridge(s)
    _until(flow, repo, producer, s, rt, jid, _all_parked(rt, jid, 3), "all parked")
    before = _calls(flow.engine, jid)[0]
    job = _feed(flow, repo, producer, s, rt, jid)
    assert job.status == "paused" and _calls(flow.engine, jid)[0] == before == 0
    assert control_job(repo, rt.job_control, jid, "resume").status == "running"
    job = _until(
        flow, repo, producer, s, rt, jid, lambda j: j.status == "completed", "the job to complete"
    )
    assert job.figures.completed == 3 and _calls(flow.engine, jid)[0] == 9


def test_drain_finishes_the_running_and_starts_no_new(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any
) -> None:
    s, repo, rt = setup
    s = s.model_copy(update={"jobs_feed_batch": 2})
    spec = {"name": "d", "min_turns": 2, "max_turns": 2, "participants": PAIR}
    made = create_job(repo, producer, s, spec, inline_topics(TOPICS))
    jid = made.job.id
    assert made.feed.published == 2
    control_job(repo, rt.job_control, jid, "pause")
    run_bridge(s)
    _until(flow, repo, producer, s, rt, jid, _all_parked(rt, jid, 2), "two parked")
    assert control_job(repo, rt.job_control, jid, "drain").status == "draining"
    job = _until(
        flow, repo, producer, s, rt, jid, lambda j: j.status == "completed", "the drain to end"
    )
    assert job.fed == 2 and job.figures.started == 2 == job.figures.completed


def test_cancel_ends_every_conversation_and_leaves_no_event_stuck(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any
) -> None:
    s, repo, rt = setup
    spec = {"name": "c", "min_turns": 3, "max_turns": 3, "participants": PAIR}
    jid = create_job(repo, producer, s, spec, inline_topics(TOPICS[:3])).job.id
    control_job(repo, rt.job_control, jid, "pause")
    run_bridge(s)
    _until(flow, repo, producer, s, rt, jid, _all_parked(rt, jid, 3), "all parked")
    assert control_job(repo, rt.job_control, jid, "cancel").status == "cancelled"
    job = _until(flow, repo, producer, s, rt, jid, lambda j: j.figures.failed == 3, "all cancelled")
    assert job.status == "cancelled" and job.figures.running == 0
    with flow.engine.connect() as conn:
        errors = (
            conn.execute(text("SELECT error FROM conversations WHERE job_id = :j"), {"j": jid})
            .scalars()
            .all()
        )
        events = (
            conn.execute(text("SELECT status FROM events WHERE event_id LIKE :p"), {"p": f"{jid}%"})
            .scalars()
            .all()
        )
    assert len(errors) == 3 and all("JobCancelled" in (e or "") for e in errors), errors
    assert sorted(events) == ["dead_lettered"] * 3
    assert _calls(flow.engine, jid)[0] == 0
