"""A backlog longer than a conversation's time budget, at a tight limit, through a real
worker: admission keeps a few conversations running at once, waits for the limiter are
no attempts, and every conversation completes with all its turns, one LLM call each."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from chimera.db.tables import Conversation, LLMCall
from chimera.redis_client import make_redis
from tests.tasks.conftest import Flow
from tests.tasks.test_conversation_faults import accept, start_on

CAP = 2
TIMEOUT_S = 12
CONVERSATIONS = 12
TURNS = 4


@pytest.mark.subprocess_worker
def test_a_backlog_longer_than_the_budget_completes_whole_at_the_limit(
    flow: Flow, sim_calls: Any, worker_process: Any, settings: Any
) -> None:
    # The simulator allows more than the limiter ever lets through: a 429 would be ours.
    sim_calls.configure(limits={"rpm": 70})
    _forget_admissions(settings)  # earlier tests' running entries would count
    worker = worker_process(
        env={
            "CHIMERA_MAX_RUNNING_CONVERSATIONS": str(CAP),
            "CONVERSATION_TIMEOUT_SECONDS": str(TIMEOUT_S),
            # One call a second per provider (2 per 2-second window): 48 calls take
            # twice the budget of one conversation.
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "2",
            "CHIMERA_LLM_LIMIT_WINDOW_S": "2",
            "CHIMERA_CELERY_CONCURRENCY": "4",
        }
    )
    events = [flow.event(min_turns=TURNS, max_turns=TURNS) for _ in range(CONVERSATIONS)]
    cids = [accept(flow, event) for event in events]
    for event in events:
        start_on(flow, worker, event)
    rows = [flow.wait(cid, timeout_s=240) for cid in cids]

    assert [r.turn_count for r in rows] == [TURNS] * CONVERSATIONS
    calls = sim_calls.calls()
    assert calls.count(status=429) == 0
    assert calls.count(status=200) == calls.total == CONVERSATIONS * TURNS
    flow.llm_calls(cids[-1], count=TURNS)
    with flow.engine.connect() as conn:
        ok = conn.execute(select(LLMCall.owner_id).where(LLMCall.status == "ok")).all()
        spans = conn.execute(
            select(Conversation.created_at, Conversation.completed_at).where(
                Conversation.id.in_(cids)
            )
        ).all()
    assert len(ok) == CONVERSATIONS * TURNS
    # The backlog outlasted one conversation's budget ...
    assert (
        max(s.completed_at for s in spans) - min(s.created_at for s in spans)
    ).total_seconds() > (TIMEOUT_S)
    # ... and never more than CAP conversations ran at once.
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= CAP


def _forget_admissions(settings: Any) -> None:
    client = make_redis(settings)
    try:
        keys = list(client.scan_iter(match=settings.redis_key("admission", "*")))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
