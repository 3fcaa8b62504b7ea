"""Redis faults under a running stack: restarted empty, paused (SIGSTOP).

The stack's Redis is a private server (broker, results and state), so it can be
wiped or frozen while a worker, beat (the reconciler) and the bridge run against it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.reliability.harness import invariants
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]


def test_redis_restarted_empty_mid_run_every_event_is_redriven_to_done(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Queues, unacked messages, chains' next steps, conversation state, leases, stored
    outputs and chord counters all vanish; the reconciler finds the events the inbox
    still holds in flight and re-drives each to done."""
    sim_calls.configure(ttft_ms=250)
    stack = make_stack()
    stack.start_all()
    ids = stack.produce_mixed_and_wait_in_flight(sim_calls)
    settled_before = stack.settled(ids)
    paid_before = sim_calls.calls().count(status=200)
    baseline = stack.rss()
    stack.redis.restart_empty()
    wiped_at = time.monotonic()
    # Events arriving after the wipe: the bridge hands off into an empty broker
    # (queue bindings gone too) and the worker must still receive them.
    ids += stack.produce_conversations(2) + stack.produce_analyses(1)
    recovery_s = stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        # What was paid before the wipe may be paid again (its stored outputs are
        # gone), plus the calls in flight when it happened (one per worker thread).
        allowed_extra_calls=paid_before + stack.settings.celery_concurrency,
        rss_baseline=baseline,
        # A header that finished after the wipe reported to a chord whose size key
        # was gone: its join list stays until it expires (result_expires).
        allow_expiring_chord_orphans=True,
    )
    assert settled_before < len(ids), "the wipe came too late to interrupt anything"
    record(
        "redis restarted empty",
        request.node.name,
        happened="the reconciler re-drove every unfinished event; all done, none lost",
        settled_before_fault=settled_before,
        paid_before_fault=paid_before,
        recovery_s=round(time.monotonic() - wiped_at, 1),
        wait_s=round(recovery_s, 1),
        **report.as_dict(),
    )


def test_redis_paused_for_seconds_mid_run_loses_nothing(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """SIGSTOP freezes Redis with connections open: clients time out, leases lapse
    while it sleeps; on SIGCONT everything must carry on to done."""
    sim_calls.configure(ttft_ms=250)
    stack = make_stack()
    stack.start_all()
    ids = stack.produce_mixed_and_wait_in_flight(sim_calls)
    settled_before = stack.settled(ids)
    baseline = stack.rss()
    stack.redis.pause()
    time.sleep(6)  # the fault itself: longer than the lease TTL and the socket timeouts
    stack.redis.resume()
    resumed_at = time.monotonic()
    stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        # A call that finished while Redis slept could not be stored: paid again.
        allowed_extra_calls=stack.settings.celery_concurrency,
        rss_baseline=baseline,
    )
    assert settled_before < len(ids)
    record(
        "redis paused (SIGSTOP 6 s)",
        request.node.name,
        happened="clients timed out and retried; every event done after SIGCONT",
        settled_before_fault=settled_before,
        recovery_s=round(time.monotonic() - resumed_at, 1),
        **report.as_dict(),
    )


def test_redis_restarted_with_its_data_every_process_reconnects_and_nothing_is_lost(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Redis crashes (SIGKILL) and comes back 3 s later on its persisted data: the worker
    loses its broker connection with tasks in flight and must reconnect rather than
    exit (kombu 5.7 exits there: tasks/broker.py); queues and unacked messages come
    back with the data."""
    sim_calls.configure(ttft_ms=250)
    stack = make_stack()
    stack.start_all()
    worker = next(p for p in stack.processes if p.name.startswith("worker"))
    ids = stack.produce_mixed_and_wait_in_flight(sim_calls)
    settled_before = stack.settled(ids)
    baseline = stack.rss()
    stack.redis.crash_restart(down_s=3)
    restarted_at = time.monotonic()
    ids += stack.produce_conversations(2) + stack.produce_analyses(1)
    stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        # A call that finished while Redis was down could not be stored: paid again.
        allowed_extra_calls=stack.settings.celery_concurrency,
        rss_baseline=baseline,
        # The worker reconnects on kombu's schedule (2, 4, 6 s...), so it is back some
        # 12 s later: past this stack's 8 s reconciler deadline, which re-sends the
        # chords of runs not yet started; the superseded chord's join list expires.
        allow_expiring_chord_orphans=True,
    )
    assert settled_before < len(ids), "the restart came too late to interrupt anything"
    log = worker.log()
    assert "Connection to broker lost" in log, "the worker never saw the restart"
    assert "Unrecoverable error" not in log
    record(
        "redis crashed and restarted with its data (3 s down)",
        request.node.name,
        happened="the worker reconnected (same process); every event done, none lost",
        settled_before_fault=settled_before,
        recovery_s=round(time.monotonic() - restarted_at, 1),
        **report.as_dict(),
    )
