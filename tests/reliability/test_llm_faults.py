"""LLM faults end to end, through the bridge and real workers, with the invariant check.

What each fault does to one call (classification, retry-after, the breaker's
states, timeouts, truncated bodies) is tested in tests/chimera/llm and
tests/llmsim; here: the whole pipeline under a storm pays nothing twice, settles
every event, and fails permanently only what cannot succeed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.harness import invariants
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]


def test_429_with_retry_after_and_a_529_storm_that_opens_the_breaker(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Google answers 429 with a 3 s retry-after; Anthropic answers 529 six times in a
    row (the breaker opens at five and lets one probe through after its cooldown).
    Every conversation completes; each failed call is exactly one injected fault,
    and nothing is paid beyond the stored turns."""
    sim_calls.configure(ttft_ms=100)
    sim_calls.add_fault("rate_limit", provider="google", count=2, retry_after_s=3)
    sim_calls.add_fault("overloaded", provider="anthropic", count=6)
    stack = make_stack(breaker_failure_threshold=5, breaker_cooldown_s=2.0)
    stack.start_all()
    ids = stack.produce_conversations(4, min_turns=3, max_turns=3)
    settle_s = stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(stack, sim_calls, event_ids=ids, allowed_dead_letters=set())
    calls = sim_calls.calls()
    assert calls.count(provider="google", status=429) == 2
    assert calls.count(provider="anthropic", status=529) == 6
    assert report.llm_calls_failed == 8  # the faults, each met once; no extra failures
    assert report.extra_paid_calls == 0
    worker_log = stack.processes[0].log()
    refused_by_breaker = worker_log.count("CircuitOpen")
    assert refused_by_breaker >= 1, "the breaker never opened"
    record(
        "LLM 429 (retry-after 3 s) and a 529 storm opening the breaker",
        request.node.name,
        happened="turns re-queued with the server's hint and the breaker's cooldown; "
        "every conversation completed; nothing paid twice",
        injected_faults=8,
        breaker_refusals_logged=refused_by_breaker,
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )


def test_permanent_failures_are_called_once_and_settle_their_events(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """A safety block on one conversation's speaker, a 400 on one analysis, a truncated
    body on another: the blocked conversation is dead-lettered (``llm_permanent``)
    after one call, the analysis with the 400 is recorded ``partial`` after one call,
    the truncated answer is retried and succeeds.  Nothing is retried that cannot pass."""
    sim_calls.configure(ttft_ms=100)
    sim_calls.add_fault("safety", model="claude-safety-1", count=1)
    sim_calls.add_fault("bad_request", model="gemini-3.1-flash-lite", count=1)  # argument
    sim_calls.add_fault("truncated", model="claude-haiku-5-5", count=1)  # summary
    stack = make_stack()
    stack.start_all()
    healthy = stack.produce_conversations(2, min_turns=3, max_turns=3)
    participants = [
        {"provider": "anthropic", "model": "claude-safety-1"},
        {"provider": "google", "model": "gemini-3.5-flash"},
    ]
    [blocked] = stack.produce_conversations(1, participants=participants)
    runs = stack.produce_analyses(2)
    ids = [*healthy, blocked, *runs]
    settle_s = stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters={blocked},
        # The refused answer and the truncated one were delivered (and billed).
        allowed_extra_calls=2,
    )
    calls = sim_calls.calls()
    assert calls.count(model="claude-safety-1") == 1  # no retry of a safety block
    assert calls.count(model="gemini-3.1-flash-lite", status=400) == 1
    assert calls.count(model="gemini-3.1-flash-lite") == 2  # one per run: no retry
    assert calls.count(model="claude-haiku-5-5") == 3  # the truncated one was retried
    [letter] = [
        r
        for r in invariants.dead_letters(stack, stack.settings.topic_conversation_dlq)
        if r.event_id == blocked
    ]
    assert letter.reason == "llm_permanent"
    with stack.engine.connect() as conn:
        from sqlalchemy import text

        statuses = sorted(
            conn.execute(
                text("SELECT status FROM analysis_runs WHERE event_id = ANY(:ids)"),
                {"ids": runs},
            ).scalars()
        )
    assert statuses == ["ok", "partial"]
    record(
        "LLM permanent failures (safety, 400) and a truncated body",
        request.node.name,
        happened="one call each for the permanent faults: the conversation dead-lettered "
        "(llm_permanent), the run recorded partial; the truncated answer retried and kept",
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )


def test_steps_waiting_out_a_long_retry_after_are_not_redriven(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """A conversation's first speaker and an analysis's summary model each answer 429 with
    a 12 s retry-after, twice: each step waits 24 s, three times the reconciler's
    deadline.  A waiting step marks its conversation or run active, so the reconciler
    leaves both alone (no second chain or chord beside the first, no call in parallel
    with the retry); both finish after exactly the refusals and one paid call each."""
    sim_calls.configure(ttft_ms=100)
    sim_calls.add_fault("rate_limit", model="claude-haiku-5-5", count=2, retry_after_s=12)
    sim_calls.add_fault("rate_limit", model="claude-sonnet-5-5", count=2, retry_after_s=12)
    stack = make_stack()
    stack.start_all()
    assert stack.settings.reconcile_after_s * 2 < 24
    [conversation] = stack.produce_conversations(1, min_turns=2, max_turns=2)
    [analysis] = stack.produce_analyses(1)
    ids = [conversation, analysis]
    settle_s = stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(stack, sim_calls, event_ids=ids, allowed_dead_letters=set())
    calls = sim_calls.calls()
    for model in ("claude-haiku-5-5", "claude-sonnet-5-5"):
        assert calls.count(model=model, status=429) == 2
    assert calls.count(model="claude-haiku-5-5") == 3  # two refusals and the summary
    assert report.extra_paid_calls == 0
    with stack.engine.connect() as conn:
        from sqlalchemy import text

        attempts = dict(
            conn.execute(
                text("SELECT event_id, attempts FROM events WHERE event_id = ANY(:ids)"),
                {"ids": ids},
            ).all()
        )
        status = conn.execute(
            text("SELECT status FROM analysis_runs WHERE event_id = :e"), {"e": analysis}
        ).scalar_one()
    assert attempts == {conversation: 0, analysis: 0}, f"re-driven while waiting: {attempts}"
    assert status == "ok"
    assert "re-drove" not in stack.processes[0].log()
    assert settle_s > 20, "the retries did not wait out the retry-after"
    record(
        "LLM 429 with a retry-after longer than the reconciler's deadline",
        request.node.name,
        happened="a turn and an analysis each waited 2 x 12 s marked active; the reconciler "
        "left both alone; each finished after exactly the injected refusals",
        injected_faults=4,
        reconcile_after_s=stack.settings.reconcile_after_s,
        redrives=sum(attempts.values()),
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )
