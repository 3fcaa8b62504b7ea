"""Postgres stopped under a running stack, while conversations finalise and chord callbacks
aggregate, then started again.

The database is a cluster of the test's own (initdb + pg_ctl): stopping it disturbs
nothing else on the machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from chimera.db.tables import LLMCall
from chimera.events.ids import conversation_id, run_id
from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.pg_proxy import PgCommitCutter
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]


def retried(log: str, task: str) -> set[str]:
    """Ids of ``chimera.<task>`` runs the worker put back for later (Celery's retry line)."""
    return set(re.findall(rf"chimera\.{re.escape(task)}\[([^\]]+)\] retry: ", log))


#: The analysis model held slow by the simulator, so its chord's callback comes late
#: (not a conversation participant: turns are not slowed).
SLOW_MODEL = "claude-opus-5-5"


def test_postgres_down_during_finalize_and_chord_callbacks_then_back(
    make_stack: Any, private_postgres: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Postgres goes away once every conversation has started and every analysis is past
    its input check, and stays away until every LLM step has been paid: so every
    finalise and every chord callback meets the outage.  They retry; once Postgres is
    back each writes its one row and settles its event.  Events that arrive meanwhile
    wait in Kafka (the bridge holds intake)."""
    sim_calls.configure(ttft_ms=400)
    # One analysis of each run answers 4 s late: the callback fires after the stop.
    sim_calls.add_fault("timeout", model=SLOW_MODEL, count=3, delay_s=4)
    stack = make_stack(database_url=private_postgres.url, celery_concurrency=16)
    stack.start_all()
    ids = stack.produce_conversations(4, min_turns=4, max_turns=4) + stack.produce_analyses(3)

    def started() -> bool:
        calls = sim_calls.calls()
        return (
            calls.count(model="claude-sonnet-5-5") >= 4  # every conversation's first turn
            and calls.count(model="claude-haiku-5-5") >= 3  # every run past its input check
            and calls.count(model="gemini-3.1-flash-lite") >= 3
        )

    wait_for(started, timeout_s=90, what="every conversation and run under way")
    baseline = stack.rss()
    settled_before = stack.settled(ids)
    private_postgres.stop("fast")
    stopped_at = time.monotonic()
    late = stack.produce_conversations(2, min_turns=2, max_turns=2)  # held by the bridge
    worker = next(p for p in stack.processes if p.name == "worker0")

    def every_callback_met_the_outage() -> bool:
        log = worker.log()
        return len(retried(log, "conversation.finalize")) == 4 and (
            len(retried(log, "analysis.aggregate")) == 3
        )

    # Postgres stays away until every finalise and every chord callback has tried and
    # been put back for later (the simulator logs calls as they begin: not a signal).
    wait_for(every_callback_met_the_outage, timeout_s=120, interval_s=0.2, what="callbacks")
    outage_s = time.monotonic() - stopped_at
    private_postgres.start()
    restarted_at = time.monotonic()
    stack.wait_settled(ids + late, timeout_s=300)
    recovery_s = time.monotonic() - restarted_at

    report = invariants.check(
        stack, sim_calls, event_ids=ids + late, allowed_dead_letters=set(), rss_baseline=baseline
    )
    assert settled_before == 0, "an event finished before Postgres went away"
    bridge_log = next(p for p in stack.processes if p.name == "bridge0").log()
    assert "Postgres unavailable" in bridge_log and "Postgres is back" in bridge_log
    log = worker.log()
    met = {
        name: len(retried(log, name)) for name in ("conversation.finalize", "analysis.aggregate")
    }
    record(
        "postgres stopped during finalize and chord callbacks",
        request.node.name,
        happened="finalize/aggregate retried with back-off; the bridge held intake; "
        "every event done once Postgres was back",
        outage_s=round(outage_s, 1),
        recovery_s=round(recovery_s, 1),
        callbacks_put_back=met,
        **report.as_dict(),
    )


@pytest.fixture
def commit_cutter(kafka_topics: Any) -> Iterator[tuple[PgCommitCutter, str]]:
    """A proxy in front of the test database that can lose COMMITs; yields it and the
    database URL through it."""
    url = make_url(kafka_topics.database_url.get_secret_value())
    proxy = PgCommitCutter(url.port or 5432)
    try:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()


def test_connections_cut_at_commit_reply_lost_or_commit_lost(
    make_stack: Any,
    commit_cutter: tuple[PgCommitCutter, str],
    sim_calls: Any,
    request: pytest.FixtureRequest,
) -> None:
    """Every process's database connection passes through a proxy that cuts it at one
    COMMIT in three (at most 24), alternately after the server committed (the reply is
    lost: the work was done, the client saw an error) and before (the transaction rolls
    back).  Inbox writes, turn rows, LLM-call rows, finalise and chord callbacks meet
    it; each retries, nothing is written twice or lost: one row per event, per step
    and per LLM call."""
    proxy, url = commit_cutter
    sim_calls.configure(ttft_ms=150)
    stack = make_stack(database_url=url)
    stack.start_all()
    proxy.arm(24, every=3)
    # One event at a time, each recorded before the next is sent: the bridge writes a
    # poll's records in one transaction, and this way it makes enough COMMITs to meet cuts.
    ids: list[str] = []
    for i in range(12):
        produce = stack.produce_conversations if i % 3 else stack.produce_analyses
        (event_id,) = produce(1, **({"min_turns": 3, "max_turns": 4} if i % 3 else {}))
        ids.append(event_id)
        wait_for(
            lambda e=event_id: e in stack.statuses([e]), timeout_s=60, what=f"{event_id} recorded"
        )
    settle_s = stack.wait_settled(ids, timeout_s=300)

    # The LLM-call rows are written in batches off the call path; a batch that met a cut
    # is retried with back-off, so they may trail the events by a few seconds.
    def call_rows() -> int:
        owners = [conversation_id(e) for e in ids] + [run_id(e) for e in ids]
        with stack.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(LLMCall).where(LLMCall.owner_id.in_(owners))
                ).scalar_one()
            )

    paid = sim_calls.calls().total
    wait_for(lambda: call_rows() >= paid, timeout_s=60, what="every LLM call's row")
    proxy.disarm()
    report = invariants.check(stack, sim_calls, event_ids=ids, allowed_dead_letters=set())
    assert call_rows() == paid, "an LLM call's row was written twice"
    assert proxy.replies_lost >= 6 and proxy.commits_lost >= 6, "too few commits were cut"
    assert report.extra_paid_calls == 0
    logs = {p.name: p.log() for p in stack.processes}
    met = {name: log.count("server closed the connection") for name, log in logs.items()}
    assert met["bridge0"] > 0 and met["worker0"] > 0, f"not every writer met a cut: {met}"
    record(
        "postgres connection cut at COMMIT (reply lost / commit lost)",
        request.node.name,
        happened="every writer retried; committed work was recognised, rolled-back work "
        "redone; one row per event and per step, nothing paid twice",
        replies_lost=proxy.replies_lost,
        commits_lost=proxy.commits_lost,
        commits_passed=proxy.commits_passed,
        errors_logged_per_process=met,
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )
