"""A configured limit four times the provider's real one, through a real worker: Chimera's
own limiter lets every call through, the provider answers the calls beyond its minute
with a 429 and a ``retry-after``, and every conversation still completes in full.

A 429 with a ``retry-after`` is a wait, not an attempt, and it is held fleet-wide for
that model (``chimera.llm.limiter``): the turn told to wait comes back, however early
its task runs again, only once the provider's oldest call has left its window.  So each
call beyond the provider's minute is refused at most once, within that minute.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from chimera.db.tables import LLMCall
from chimera.redis_client import make_redis
from tests.tasks.conftest import Flow
from tests.tasks.test_conversation_faults import accept, start_on

#: What the provider (the simulator) really allows, per model and minute.
PROVIDER_RPM = 11
#: What Chimera is told, per provider: four times too many.
CONFIGURED_RPM = 4 * PROVIDER_RPM
CONVERSATIONS = 6
TURNS = 4
#: Each conversation alternates the two default participants (one model each).
CALLS_PER_MODEL = CONVERSATIONS * TURNS // 2
#: Shorter than the backlog: 12 answers of a model at 11 a minute span more than 60 s.
TIMEOUT_S = 40
WINDOW_S = 60.0


@pytest.mark.subprocess_worker
def test_a_limit_four_times_too_high_still_completes_every_conversation(
    flow: Flow, sim_calls: Any, worker_process: Any, settings: Any
) -> None:
    sim_calls.configure(limits={"rpm": PROVIDER_RPM})
    _forget(settings, "admission", "llm")  # earlier tests' places, windows, holds, breakers
    worker = worker_process(
        env={
            "RATE_LIMIT_REQUESTS_PER_MINUTE": str(CONFIGURED_RPM),
            "CONVERSATION_TIMEOUT_SECONDS": str(TIMEOUT_S),
            "CHIMERA_MAX_RUNNING_CONVERSATIONS": str(CONVERSATIONS),
            # A waiting task's countdown is cut to 20 s (half of what the visibility
            # timeout leaves after the task's time limit), well short of the provider's
            # retry-after: it is the fleet-wide hold that turns the early returns away.
            "CHIMERA_VISIBILITY_TIMEOUT_S": "60",
            "CHIMERA_TASK_TIME_LIMIT_S": "20",
            "CHIMERA_TASK_SOFT_TIME_LIMIT_S": "15",
        }
    )
    events = [flow.event(min_turns=TURNS, max_turns=TURNS) for _ in range(CONVERSATIONS)]
    cids = [accept(flow, event) for event in events]
    for event in events:
        start_on(flow, worker, event)
    rows = [flow.wait(cid, timeout_s=150) for cid in cids]

    # Every conversation completed with all its turns, each paid once.
    assert [r.turn_count for r in rows] == [TURNS] * CONVERSATIONS
    assert [len(flow.turns(cid)) for cid in cids] == [TURNS] * CONVERSATIONS
    calls = sim_calls.calls()
    assert calls.count(status=200) == CONVERSATIONS * TURNS
    assert calls.total == calls.count(status=200) + calls.count(status=429)
    for cid in cids:
        flow.llm_calls(cid, count=TURNS)
    with flow.engine.connect() as conn:
        recorded = conn.execute(select(LLMCall.status, LLMCall.attempt)).all()
    assert sum(1 for r in recorded if r.status == "ok") == CONVERSATIONS * TURNS
    # A 429 with a retry-after is a wait: no turn spent a second attempt.
    assert {r.attempt for r in recorded} == {1}

    by_model: dict[str, list[Any]] = defaultdict(list)
    for call in calls.calls:
        by_model[call.model].append(call)
    assert len(by_model) == 2
    for model, log in by_model.items():
        log.sort(key=lambda c: c.ts)
        answered = [c for c in log if c.status == 200]
        refused = [c for c in log if c.status == 429]
        assert len(answered) == CALLS_PER_MODEL, model
        # The backlog outlasted a conversation's time budget ...
        assert answered[-1].ts - answered[0].ts > TIMEOUT_S, model
        # ... yet only the calls beyond the provider's minute were refused, each at most
        # once, and none after that minute: the hold kept every return until then.
        assert len(refused) <= CALLS_PER_MODEL - PROVIDER_RPM, (model, refused)
        assert all(c.ts < log[0].ts + WINDOW_S for c in refused), (model, refused)


def _forget(settings: Any, *namespaces: str) -> None:
    """Delete our state keys under each namespace: the session's Redis is shared."""
    client = make_redis(settings)
    try:
        for namespace in namespaces:
            keys = list(client.scan_iter(match=settings.redis_key(namespace, "*")))
            if keys:
                client.delete(*keys)
    finally:
        client.close()
