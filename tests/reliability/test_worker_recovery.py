"""A dead or stopped worker's work, with the default recovery settings.

The fault tests elsewhere shorten the visibility timeout and the reconciler's
deadlines so that the slow paths act within a test.  Here those stay at their
defaults (an hour, ten minutes): what brings the work back is the workers' liveness
keys and recovery sweeps (``tasks/recovery.py``), as a new installation has them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chimera import defaults as d
from chimera.conversation.store import StateStore
from chimera.events.ids import conversation_id
from chimera.redis_client import make_redis
from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.results import record

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]

#: Every timing the recovery of a dead worker's work could wait on, at its default.
DEFAULT_RECOVERY: dict[str, Any] = {
    "visibility_timeout_s": d.VISIBILITY_TIMEOUT_S,
    "unacked_restore_interval_s": d.UNACKED_RESTORE_INTERVAL_S,
    "unacked_mutex_expire_s": d.UNACKED_MUTEX_EXPIRE_S,
    "conversation_lock_ttl_s": d.CONVERSATION_LOCK_TTL_S,
    "task_time_limit_s": d.TASK_TIME_LIMIT_S,
    "task_soft_time_limit_s": d.TASK_SOFT_TIME_LIMIT_S,
    "reconcile_after_s": d.RECONCILE_AFTER_S,
    "reconcile_interval_s": d.RECONCILE_INTERVAL_S,
    "reconcile_max_attempts": d.RECONCILE_MAX_ATTEMPTS,
    "heartbeat_interval_s": d.HEARTBEAT_INTERVAL_S,
    "worker_soft_shutdown_timeout_s": d.WORKER_SOFT_SHUTDOWN_TIMEOUT_S,
    "worker_liveness_ttl_s": d.WORKER_LIVENESS_TTL_S,
    "recovery_interval_s": d.RECOVERY_INTERVAL_S,
}
#: The issue's bound: generous, not a speed target.  Recovery that waited for the
#: visibility timeout (3,600 s) or the reconciler (600 s) would be far past it.
RECOVERY_BOUND_S = 30.0
#: Once every event settled, nothing is left in the queue or unacknowledged for longer
#: than this: no message waits for the visibility timeout (an hour).
QUIET_S = 60.0


def _turns(store: StateStore, event_ids: list[str]) -> dict[str, int]:
    """Turns taken so far by each event's conversation (-1: no state: finished)."""
    out = {}
    for event_id in event_ids:
        state = store.load(conversation_id(event_id))
        out[event_id] = -1 if state is None else len(state.turns)
    return out


def _members(client: Any, key: str) -> set[str]:
    return {str(m) for m in client.smembers(key)}


def _four_conversations_under_way(
    make_stack: Any, sim_calls: Any
) -> tuple[Any, list[str], Any, StateStore]:
    """A stack on the default recovery settings, with four six-turn conversations that
    have each taken a turn (each turn takes 1.5 s, so one is in flight at any time)."""
    sim_calls.configure(ttft_ms=1_500)
    stack = make_stack(**DEFAULT_RECOVERY)
    stack.start_all()
    ids = stack.produce_conversations(4, min_turns=6, max_turns=6)
    client = make_redis(stack.settings)
    store = StateStore(client, stack.settings)
    wait_for(
        lambda: all(n >= 1 for n in _turns(store, ids).values()),
        timeout_s=90,
        what="every conversation to have taken a turn",
    )
    return stack, ids, client, store


def _wait_moved(store: StateStore, before: dict[str, int], since: float) -> float:
    """Seconds from ``since`` until the last of the conversations took a turn past
    ``before`` (or finished)."""
    moved: dict[str, float] = {}

    def all_moved() -> bool:
        now = _turns(store, list(before))
        for event_id, n in before.items():
            if event_id not in moved and (now[event_id] > n or now[event_id] == -1):
                moved[event_id] = time.monotonic() - since
        return len(moved) == len(before)

    wait_for(all_moved, timeout_s=300, interval_s=0.25, what="every conversation to move on")
    return max(moved.values())


def test_a_worker_sigkilled_mid_turn_has_its_work_back_within_seconds(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Four conversations running, the worker SIGKILLed mid-call and started again: each
    conversation takes its next turn within 30 s of the kill, every event ends done,
    and no turn is paid for more than once beyond the calls in flight at the kill.

    The kill comes once the worker has received every conversation's second turn (each
    then spends 1.5 s in its call), not as the turns are handed out: a kill in the instant
    between Redis handing a message over (kombu's BRPOP) and kombu recording it as
    unacknowledged loses the message in Redis itself, and only the reconciler's deadline
    brings that conversation back (docs/reliability.md, "A worker dies or stops")."""
    stack, ids, client, store = _four_conversations_under_way(make_stack, sim_calls)
    first = stack.processes[0]
    wait_for(
        lambda: all(f"{conversation_id(e)}:turn:1] received" in first.log() for e in ids),
        timeout_s=90,
        what="the worker to hold every conversation's second turn",
    )
    at_kill = _turns(store, ids)
    paid_at_kill = sim_calls.calls().count(status=200)
    first.kill()
    killed_at = time.monotonic()
    stack.start_worker()
    slowest = _wait_moved(store, at_kill, killed_at)
    stack.wait_settled(ids, timeout_s=300)
    client.close()

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        allowed_extra_calls=len(ids),  # the calls in flight at the kill, one per conversation
        quiet_timeout_s=QUIET_S,
    )
    record(
        "worker SIGKILLed, default recovery settings",
        request.node.name,
        happened="the new worker's sweep found the dead worker's liveness key gone and put "
        "its messages back; each conversation took its next turn, every event done",
        paid_at_kill=paid_at_kill,
        recovery_s=round(slowest, 1),
        liveness_ttl_s=stack.settings.worker_liveness_ttl_s,
        recovery_interval_s=stack.settings.recovery_interval_s,
        visibility_timeout_s=stack.settings.visibility_timeout_s,
        **report.as_dict(),
    )
    assert slowest <= RECOVERY_BOUND_S


def test_a_worker_stopped_with_sigterm_hands_its_work_back(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """A deploy: a new worker starts, the old one gets SIGTERM with turns in flight.  It
    takes no more messages, its running calls finish, what it held goes back as it
    closes, and its records are gone once it has exited: every conversation moves on
    within the bound, nothing is paid twice."""
    stack, ids, client, store = _four_conversations_under_way(make_stack, sim_calls)
    old = stack.processes[0]
    new = stack.start_worker()
    workers_key = stack.settings.redis_key("workers")
    wait_for(lambda: len(_members(client, workers_key)) == 2, what="both workers beating")
    old_ids = _members(client, workers_key)
    at_stop = _turns(store, ids)
    stopped_at = time.monotonic()
    old.stop(timeout_s=120)
    exited_s = time.monotonic() - stopped_at
    slowest = _wait_moved(store, at_stop, stopped_at)
    stack.wait_settled(ids, timeout_s=300)
    # The old worker's records are gone: its liveness key first, then (swept by the new
    # worker) its held set and its name.
    wait_for(
        lambda: len(_members(client, workers_key)) == 1,
        timeout_s=60,
        what="the old worker forgotten",
    )
    (gone,) = old_ids - _members(client, workers_key)
    assert not client.exists(stack.settings.redis_key("held", gone))
    client.close()

    report = invariants.check(
        stack,
        sim_calls,
        event_ids=ids,
        allowed_dead_letters=set(),
        allowed_extra_calls=0,
        quiet_timeout_s=QUIET_S,
    )
    assert old.proc.returncode == 0, "it did not shut down warmly (SIGKILLed after 120 s?)"
    assert "Warm shutdown" in old.log()
    record(
        "worker stopped with SIGTERM (a deploy), default recovery settings",
        request.node.name,
        happened="warm shutdown: running turns finished, the rest went back to the queue "
        "as it closed; the new worker went on; nothing paid twice",
        exited_s=round(exited_s, 1),
        recovery_s=round(slowest, 1),
        new_worker=new.name,
        **report.as_dict(),
    )
    assert slowest <= RECOVERY_BOUND_S


def test_slow_calls_and_long_retry_waits_are_never_taken_for_a_dead_worker(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Two workers, default recovery settings; every call takes 18 s and the first is
    refused with a 20 s retry-after, each longer than the liveness TTL (15 s).  A worker
    busy that long keeps beating: nobody sweeps it, no call runs twice, and exactly the
    one refusal and one paid call per turn are made."""
    sim_calls.configure(ttft_ms=18_000)
    sim_calls.add_fault("rate_limit", count=1, retry_after_s=20)
    # The suite's 10 s call timeout would cut the 18 s calls: the default (60 s) here.
    stack = make_stack(**DEFAULT_RECOVERY, llm_timeout_s=d.LLM_TIMEOUT_S)
    stack.start_all(workers=2)
    assert stack.settings.worker_liveness_ttl_s < 18
    ids = stack.produce_conversations(1, min_turns=2, max_turns=2)
    settle_s = stack.wait_settled(ids, timeout_s=300)

    report = invariants.check(
        stack, sim_calls, event_ids=ids, allowed_dead_letters=set(), quiet_timeout_s=QUIET_S
    )
    calls = sim_calls.calls()
    assert calls.count(status=429) == 1
    assert calls.count(status=200) == report.steps_stored == 2
    assert report.extra_paid_calls == 0
    for worker in stack.processes:
        assert "stopped beating" not in worker.log(), worker.name
    assert settle_s > 20 + 2 * 18 - 5, "the calls were not as slow as configured"
    record(
        "slow calls and a long retry-after, default recovery settings",
        request.node.name,
        happened="two 18 s calls and a 20 s retry wait, each past the liveness TTL: no "
        "worker was taken for dead, nothing put back, nothing paid twice",
        liveness_ttl_s=stack.settings.worker_liveness_ttl_s,
        settle_s=round(settle_s, 1),
        **report.as_dict(),
    )
