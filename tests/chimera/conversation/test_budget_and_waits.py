"""A conversation's time budget starts at its first turn; waiting (for the limiter,
the breaker, a provider's retry-after) is no LLM attempt; a conversation that ends
before its ``min_turns`` fails as ``too_few_turns`` and a replay finishes it.

Against the real stores and the LLM simulator, like ``test_turns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from chimera.conversation.admission import Admission
from chimera.conversation.engine import ConversationEngine
from chimera.conversation.turns import (
    ChainToSend,
    Finish,
    Next,
    Queued,
    admit_waiting,
    attempt_turn,
    conclude,
    dispatch,
    release,
)
from chimera.decisions import RetryWait
from chimera.errors import LimiterRefused, RateLimited
from chimera.events.ids import conversation_id
from chimera.events.reconcile import Verdict
from tests.chimera.conversation.test_turns import (
    dead_letters,
    inbox_status,
    row,
    started,
    submit,
)


@pytest.fixture
def tight(make_engine: Callable[..., ConversationEngine]) -> ConversationEngine:
    """An engine whose limiter admits one request a minute and never waits for more."""
    return make_engine(
        rate_limit_requests_per_minute=1, llm_max_wait_s=0.0, max_running_conversations=10
    )


def _timeout(eng: ConversationEngine, seconds: float) -> None:
    eng.settings = eng.settings.model_copy(update={"conversation_timeout_seconds": seconds})


def test_time_queued_before_the_first_turn_does_not_count(
    engine: ConversationEngine,
) -> None:
    _timeout(engine, 1)
    _, cid = started(engine, min_turns=2, max_turns=2)
    state = engine.store.load(cid)
    assert state is not None and state.deadline_at is None  # no clock before turn 0
    time.sleep(1.5)  # longer than its whole budget, queued
    assert attempt_turn(engine, cid, 0) == Next()
    state = engine.store.load(cid)
    assert state is not None and state.deadline_at is not None
    assert state.deadline_at > time.time() - 1.0 and len(state.turns) == 1


def test_a_state_stored_with_a_deadline_keeps_it(
    engine: ConversationEngine,
) -> None:
    """States written before the budget moved to the first turn carry a deadline."""
    _, cid = started(engine, min_turns=2, max_turns=3)
    with engine.store.lease(cid) as lease:
        state = engine.store.load(cid)
        assert state is not None
        state.deadline_at, state.timeout_s = time.time() - 1, None
        engine.store.save(state, lease)
    assert attempt_turn(engine, cid, 0) == Finish()  # expired: it ends (too short)


def test_a_conversation_ending_before_min_turns_fails_and_a_replay_finishes_it(
    engine: ConversationEngine,
    db: Any,
    sim_calls: Any,
) -> None:
    _timeout(engine, 1)
    event_id, cid = started(engine, min_turns=3, max_turns=3)
    assert attempt_turn(engine, cid, 0) == Next()
    time.sleep(1.5)  # its budget runs out after one turn
    assert attempt_turn(engine, cid, 1) == Finish()
    assert conclude(engine, cid, analyse=lambda c: c) is None
    assert row(db, cid).status == "failed" and "TooFewTurns" in row(db, cid).error
    assert inbox_status(db, event_id) == "dead_lettered"
    (letter,) = dead_letters(engine, event_id)
    assert letter["x-dlq-reason"] == "too_few_turns"
    assert letter["x-error-class"] == "TooFewTurns"

    # The replay (``chimera dlq replay``, through the bridge) puts the event back.
    _timeout(engine, 300)
    assert engine.inbox.reset(event_id)
    assert dispatch(engine, event_id) == ChainToSend(cid, range(1, 3))  # its turn is kept
    assert attempt_turn(engine, cid, 1) == Next()
    assert attempt_turn(engine, cid, 2) == Finish()
    assert conclude(engine, cid, analyse=lambda c: c) is None
    assert row(db, cid).status == "completed" and row(db, cid).turn_count == 3
    assert inbox_status(db, event_id) == "done"
    assert sim_calls.calls().total == 3  # the turn done before the failure is not paid again


def test_provider_waits_are_no_attempts_and_never_fail_the_turn(
    engine: ConversationEngine,
    db: Any,
    sim_calls: Any,
) -> None:
    """turn_max_retries is 1 here: three 429s with retry-after are three waits."""
    _, cid = started(engine, min_turns=1, max_turns=1)
    sim_calls.add_fault("rate_limit", provider="anthropic", count=3, retry_after_s=1)
    for waits in range(3):
        decision = attempt_turn(engine, cid, 0, attempt=1, waits=waits)
        assert isinstance(decision, RetryWait), decision
        assert isinstance(decision.error, RateLimited) and decision.countdown_s >= 1
        assert engine.store.active(cid)  # waiting is progress, not a stall
    assert attempt_turn(engine, cid, 0, attempt=1, waits=3) == Finish()
    assert conclude(engine, cid, analyse=lambda c: c) is None
    assert row(db, cid).status == "completed"
    assert sim_calls.calls().total == 4


def test_limiter_refusals_are_waits_that_never_fail_the_turn(
    tight: ConversationEngine,
    db: Any,
    sim_calls: Any,
) -> None:
    """One request a (long) window and no wait allowed: the limiter turns the next calls
    away locally, without calling the provider, and each refusal is a wait."""
    first, cid1 = started(tight, min_turns=1, max_turns=1)
    second = submit(tight, min_turns=1, max_turns=1)
    assert dispatch(tight, second) is not None
    cid2 = conversation_id(second)
    assert attempt_turn(tight, cid1, 0) == Finish()
    for waits in range(3):  # more waits than turn_max_retries (1)
        decision = attempt_turn(tight, cid2, 0, attempt=1, waits=waits)
        assert isinstance(decision, RetryWait), decision
        assert isinstance(decision.error, LimiterRefused)
    assert sim_calls.calls().total == 1  # refusals never reach the provider
    assert row(db, cid2).status == "running"
    assert inbox_status(db, first) == "dispatched"


def test_a_wait_for_capacity_moves_the_deadline_on_by_the_wait(
    tight: ConversationEngine,
) -> None:
    """Time spent waiting for the fleet's limit is not the conversation's own: its
    deadline moves on by each wait, so a backlog at the limit cuts none short."""
    both_anthropic = [
        {"provider": "anthropic", "model": "claude-sonnet-5-5"},
        {"provider": "anthropic", "model": "claude-haiku-5-5"},
    ]  # one provider: one window, used up by turn 0
    _, cid1 = started(tight, min_turns=2, max_turns=2, participants=both_anthropic)
    assert attempt_turn(tight, cid1, 0) == Next()  # the clock starts
    before = tight.store.load(cid1)
    assert before is not None and before.deadline_at is not None
    decision = attempt_turn(tight, cid1, 1, attempt=1, waits=0)
    assert isinstance(decision, RetryWait), decision
    after = tight.store.load(cid1)
    assert after is not None and after.deadline_at is not None
    assert after.deadline_at == pytest.approx(before.deadline_at + decision.countdown_s)
    tight.waiting_to_retry(cid1, 30.0)  # any other retry keeps the deadline
    kept = tight.store.load(cid1)
    assert kept is not None and kept.deadline_at == after.deadline_at


def test_over_the_cap_a_conversation_waits_in_line_then_its_turn_comes(
    engine: ConversationEngine,
    db: Any,
) -> None:
    engine.admission = Admission(
        engine.store._redis, engine.settings.model_copy(update={"max_running_conversations": 1})
    )
    _, first = started(engine, min_turns=1, max_turns=1)
    low = submit(engine, min_turns=1, max_turns=1)
    high = submit(engine, min_turns=1, max_turns=1, priority=3)
    assert dispatch(engine, low) == Queued(low)
    assert dispatch(engine, high) == Queued(high)
    assert engine.repo.status(conversation_id(low)) is None  # nothing started
    assert inbox_status(db, low) == "received"
    recorded = engine.inbox.get(low)
    assert recorded is not None
    decision = engine.judge_stuck(recorded)  # the reconciler leaves it in line
    assert decision.verdict is Verdict.PROGRESSING and decision.touch

    assert attempt_turn(engine, first, 0) == Finish()
    assert conclude(engine, first, analyse=lambda c: c) is None
    assert release(engine, first) == (high,)  # the higher priority first
    assert dispatch(engine, high) == ChainToSend(conversation_id(high), range(1))
    assert dispatch(engine, low) == Queued(low)  # still full
    assert admit_waiting(engine) == ()
    assert attempt_turn(engine, conversation_id(high), 0) == Finish()
    assert conclude(engine, conversation_id(high), analyse=lambda c: c) is None
    # A lost release: beat prunes the finished conversation and admits the next.
    assert admit_waiting(engine) == (low,)
