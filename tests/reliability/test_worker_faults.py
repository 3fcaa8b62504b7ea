"""Worker processes under faults: SIGKILL of the whole worker mid-chain, and a lease holder
frozen (SIGSTOP) past its TTL while another worker takes the conversation over.

Complements tests/tasks/test_conversation_faults.py (one conversation, one kill,
no bridge): here events come through Kafka and the bridge, many are in flight,
and every invariant is checked afterwards.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chimera.conversation.store import StateStore
from chimera.defaults import TASK_MAX_CRASHES
from chimera.events.ids import conversation_id
from chimera.redis_client import make_redis
from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]


def test_whole_worker_sigkilled_mid_chain_and_replaced(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """The worker dies with turns and analyses in flight and its prefetched messages
    unacked; the new worker puts them back once the dead one's liveness key expires, or
    the visibility sweep does (these timings make it shorter than the liveness TTL), and
    the reconciler resumes stalled chains; every event ends done."""
    sim_calls.configure(ttft_ms=300)
    stack = make_stack()
    stack.start_all()
    ids = stack.produce_mixed_and_wait_in_flight(sim_calls)
    first = stack.processes[0]
    settled_before = stack.settled(ids)
    first.kill()
    killed_at = time.monotonic()
    paid_at_kill = sim_calls.calls().count(status=200)
    second = stack.start_worker()
    baseline = {second.name: second.rss_mib()}
    stack.wait_settled(ids, timeout_s=300)
    recovery_s = time.monotonic() - killed_at

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        # The calls in flight when it died (one per thread) may be paid again.
        allowed_extra_calls=stack.settings.celery_concurrency,
        rss_baseline=baseline,
        # The reconciler re-sent a chord under the same header ids; the dead worker's
        # headers, restored later, are skipped as "already completed successfully", so
        # the superseded chord's join list never fills: it expires (result_expires).
        allow_expiring_chord_orphans=True,
    )
    assert settled_before < len(ids)
    deduplicated = second.log().count("Task already completed successfully")
    record(
        "whole worker SIGKILLed mid-chain, new worker started",
        request.node.name,
        happened="the reconciler resumed the stalled chains and chords on the new worker; "
        "the dead worker's unacked messages, restored later, ran as no-ops; every event done",
        settled_before_fault=settled_before,
        paid_at_kill=paid_at_kill,
        redelivered_skipped_as_done=deduplicated,
        visibility_timeout_s=stack.settings.visibility_timeout_s,
        recovery_s=round(recovery_s, 1),
        **report.as_dict(),
    )


def test_lease_holder_frozen_past_its_ttl_cannot_overwrite_the_new_holders_state(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Worker A is frozen mid-turn holding the conversation's lease.  The lease lapses;
    the reconciler resumes the chain on worker B, which runs that turn itself and goes
    on.  When A wakes, its answer arrives late: the stored output is B's (first writer
    wins) and A's state write is refused by the fence; the conversation keeps each turn
    once, in order."""
    sim_calls.configure(ttft_ms=1_500)
    stack = make_stack()
    stack.start_all()
    holder = stack.processes[0]
    [event_id] = stack.produce_conversations(1, min_turns=8, max_turns=8)
    cid = conversation_id(event_id)
    redis = make_redis(stack.settings)
    store = StateStore(redis, stack.settings)
    lock_key = stack.settings.redis_key("conv", f"{{{cid}}}", "lock")
    try:

        def mid_turn() -> int | None:
            state = store.load(cid)
            if state is None or state.next_turn < 1 or not redis.exists(lock_key):
                return None
            return state.next_turn

        frozen_turn = wait_for(mid_turn, timeout_s=90, interval_s=0.02, what="a turn in flight")
        holder.pause()
        frozen_at = time.monotonic()
        taker = stack.start_worker()
        output_key = stack.settings.redis_key("conv", f"{{{cid}}}", "turn", str(frozen_turn))
        wait_for(
            lambda: redis.exists(output_key),
            timeout_s=120,
            interval_s=0.1,
            what="the other worker to take the turn over",
        )
        taken_over_s = time.monotonic() - frozen_at
        stored = store.get_output(cid, frozen_turn)
        assert stored is not None
        holder.resume()
        stack.wait_settled([event_id], timeout_s=240)
    finally:
        redis.close()

    report = invariants.check(
        stack, sim_calls, event_ids=[event_id], allowed_dead_letters=set(), allowed_extra_calls=1
    )
    with stack.engine.connect() as conn:
        from sqlalchemy import text

        turns = conn.execute(
            text(
                "SELECT turn_index, content FROM conversation_turns "
                "WHERE conversation_id = :c ORDER BY turn_index"
            ),
            {"c": cid},
        ).all()
    assert [t.turn_index for t in turns] == list(range(8))
    assert turns[frozen_turn].content == stored.content  # the new holder's answer was kept
    fenced = holder.log().count("StaleLockToken")
    assert fenced >= 1, "the frozen holder's state write was not refused"
    assert taker.alive()
    record(
        "lock holder SIGSTOPped past its lease TTL, another worker takes over",
        request.node.name,
        happened="the reconciler resumed the chain on the other worker; the woken holder's "
        "write was refused by the fence; every turn once, in order",
        frozen_turn=frozen_turn,
        lease_ttl_s=stack.settings.conversation_lock_ttl_s,
        taken_over_after_s=round(taken_over_s, 1),
        fenced_writes_refused=fenced,
        **report.as_dict(),
    )


#: The model of the poison conversation's second speaker: a call to it "crashes" the
#: worker (the test SIGKILLs it as soon as the call begins; the answer is slow).
POISON_MODEL = "claude-poison-1"


def test_a_turn_that_kills_its_worker_every_time_ends_dead_lettered(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Stands for a task that crashes its process on one input (a C extension's segfault,
    an OOM kill): whenever a worker calls the model of that conversation's turn 1, the
    worker dies.  Redelivered (and re-driven by the reconciler) it would kill workers for ever;
    each run that never ended is counted per task id, and the run after
    ``TASK_MAX_CRASHES`` of them fails the conversation and dead-letters the event
    (``worker_lost``).

    Events running beside it die with it; one that was in flight at every death is
    counted like the culprit and dead-lettered too (replayable): that collateral is
    measured, not hidden.  Events arriving afterwards all complete."""
    sim_calls.configure(ttft_ms=200)
    sim_calls.add_fault("timeout", model=POISON_MODEL, rate=1.0, delay_s=3)
    stack = make_stack()
    stack.start_all()
    beside = stack.produce_conversations(3, min_turns=3, max_turns=3)
    participants = [
        {"provider": "anthropic", "model": "claude-sonnet-5-5"},
        {"provider": "anthropic", "model": POISON_MODEL},
    ]
    [poison] = stack.produce_conversations(1, participants=participants)
    worker = stack.processes[0]
    kills = 0
    started = time.monotonic()
    deadline = started + 240
    while stack.statuses([poison]).get(poison) not in ("done", "dead_lettered"):
        assert time.monotonic() < deadline, f"still not settled after {kills} kills"
        # The simulator logs a call as it begins; its answer takes 3 s: the worker
        # dies while running the poison turn, never while giving it up.
        if sim_calls.calls().count(model=POISON_MODEL) > kills:
            worker.kill()
            kills += 1
            worker = stack.start_worker()
        time.sleep(0.02)
    settle_s = time.monotonic() - started
    after = stack.produce_conversations(2, min_turns=3, max_turns=3)
    stack.wait_settled([*beside, poison, *after], timeout_s=240)

    statuses = stack.statuses(beside)
    collateral = {e for e, status in statuses.items() if status == "dead_lettered"}
    report = invariants.check(
        stack,
        sim_calls,
        event_ids=[*beside, poison, *after],
        allowed_dead_letters={poison} | collateral,
        # Each death costs the poison call and whatever else the worker had in flight.
        allowed_extra_calls=kills * stack.settings.celery_concurrency,
    )
    assert stack.statuses([poison])[poison] == "dead_lettered"
    assert stack.statuses(after) == dict.fromkeys(after, "done")
    reasons = {
        r.event_id: r.reason
        for r in invariants.dead_letters(stack, stack.settings.topic_conversation_dlq)
    }
    assert reasons[poison] == "worker_lost"
    assert all(reasons[e] == "worker_lost" for e in collateral), reasons
    # Copies of the turn (a re-driven chain) may die together: a little over the cap.
    assert 1 <= kills <= TASK_MAX_CRASHES + 2, kills
    record(
        "a turn that kills its worker every time",
        request.node.name,
        happened="runs that died with their worker were counted per task id; past "
        f"{TASK_MAX_CRASHES} the conversation failed and its event was dead-lettered "
        "(worker_lost); events arriving afterwards completed",
        worker_kills=kills,
        task_max_crashes=TASK_MAX_CRASHES,
        collateral_dead_lettered=len(collateral),
        events_beside=len(beside),
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )


def test_a_turn_longer_than_the_visibility_timeout_is_not_paid_twice(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """One LLM call outlasts the visibility timeout: Redis hands the still-running turn
    out again.  The duplicate finds the lease held (extended while the call runs) and
    backs off; once the first run stored the turn the duplicate has nothing to do."""
    # The reconciler held back: any second delivery comes from the visibility timeout.
    stack = make_stack(llm_timeout_s=40.0, reconcile_after_s=300.0)
    visibility_s = stack.settings.visibility_timeout_s
    sim_calls.add_fault("timeout", model="gemini-3.5-flash", count=1, delay_s=visibility_s + 6)
    stack.start_all()
    [event_id] = stack.produce_conversations(1, min_turns=3, max_turns=3)
    cid = conversation_id(event_id)
    took = stack.wait_settled([event_id], timeout_s=240)

    report = invariants.check(stack, sim_calls, event_ids=[event_id], allowed_dead_letters=set())
    worker_log = stack.processes[0].log()
    deliveries = worker_log.count(f"chimera.conversation.turn[{cid}:turn:1] received")
    assert deliveries >= 2, "the long turn was not handed out again"
    assert report.extra_paid_calls == 0 and report.steps_stored == 3
    record(
        "a task running longer than the visibility timeout",
        request.node.name,
        happened="the running turn was redelivered; the duplicate met the held lease and "
        "retried until the turn was stored, paying nothing",
        visibility_timeout_s=visibility_s,
        call_s=visibility_s + 6,
        deliveries_of_long_turn=deliveries,
        settle_s=round(took, 1),
        **report.as_dict(),
    )
