"""Conversations and analyses under worker faults: real `celery worker` processes, SIGKILL,
races."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.events.ids import handoff_task_id, run_id
from chimera.models import ANALYSIS_KINDS
from tests.helpers import wait_for
from tests.tasks.conftest import Flow

# A visibility timeout short enough that a killed worker's task comes back within
# the test (the time limits must stay below half of it, as the settings insist).
FAST_REDELIVERY = {
    "CHIMERA_VISIBILITY_TIMEOUT_S": "12",
    "CHIMERA_UNACKED_RESTORE_INTERVAL_S": "1",
    "CHIMERA_CONVERSATION_LOCK_TTL_S": "3",
    "CHIMERA_TASK_TIME_LIMIT_S": "6",
    "CHIMERA_TASK_SOFT_TIME_LIMIT_S": "5",
    "CHIMERA_CELERY_CONCURRENCY": "4",
}


def start_on(flow: Flow, worker: Any, event: dict[str, Any], *, resume: bool = False) -> None:
    """Hand the event to the test's own worker queue (as the bridge would)."""
    flow.app.send_task(
        "chimera.conversation.start",
        args=[event["event_id"]],
        kwargs={"resume": resume},
        task_id=None if resume else handoff_task_id("conversation", event["event_id"]),
        queue=worker.settings.celery_queue,
        ignore_result=True,
    )


def accept(flow: Flow, event: dict[str, Any]) -> str:
    from chimera.codec import payload_hash
    from chimera.events.ids import conversation_id
    from chimera.events.inbox import Source

    flow.inbox.accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
        source=Source("conversation.new", 0, 0),
    )
    return conversation_id(event["event_id"])


@pytest.mark.subprocess_worker
def test_a_worker_killed_mid_turn_is_replaced_without_paying_twice(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    sim_calls.configure(ttft_ms=700)
    first = worker_process(env=FAST_REDELIVERY)
    event = flow.event(min_turns=4, max_turns=4)
    cid = accept(flow, event)
    start_on(flow, first, event)
    # Kill it while turn 2's LLM call is in flight.
    wait_for(lambda: sim_calls.calls().total >= 3, timeout_s=60, what="turn 2 to reach the LLM")
    first.kill()
    killed_at_calls = sim_calls.calls().total
    second = worker_process(env=FAST_REDELIVERY)
    row = flow.wait(cid, timeout_s=120)
    turns = flow.turns(cid)
    assert [t.turn_index for t in turns] == list(range(row.turn_count)) == [0, 1, 2, 3]
    # At most the interrupted call is paid again.
    assert sim_calls.calls().total <= len(turns) + 1
    # The dead worker could not call turn 3: the second one finished the conversation.
    assert sim_calls.calls().total > killed_at_calls
    assert second.proc.poll() is None


@pytest.mark.subprocess_worker
def test_two_workers_racing_on_one_conversation_keep_turns_in_order(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    sim_calls.configure(ttft_ms=200)
    a = worker_process(env=FAST_REDELIVERY)
    worker_process(env=FAST_REDELIVERY)  # the same queue: they compete for every task
    event = flow.event(min_turns=5, max_turns=5)
    cid = accept(flow, event)
    start_on(flow, a, event)
    wait_for(lambda: sim_calls.calls().total >= 1, timeout_s=30, what="the first turn")
    start_on(flow, a, event, resume=True)  # a second chain of the same turns, racing the first
    start_on(flow, a, event, resume=True)
    flow.wait(cid, timeout_s=120)
    time.sleep(1)  # let the losing duplicates finish
    turns = flow.turns(cid)
    assert [t.turn_index for t in turns] == [0, 1, 2, 3, 4]
    speakers = [t.speaker for t in turns]
    assert all(x != y for x, y in itertools.pairwise(speakers))
    assert sim_calls.calls().total == 5  # no turn paid twice
    assert len(flow.llm_calls(cid, count=5)) == 5


@pytest.mark.subprocess_worker
def test_an_analysis_header_killed_mid_call_is_rerun_into_one_run(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    """Two slots: two analyses finish and are kept, the other two are in flight when the
    worker dies; the new worker re-runs only those, and the callback records one run."""
    sim_calls.configure(ttft_ms=800)
    first = worker_process(env=FAST_REDELIVERY | {"CHIMERA_CELERY_CONCURRENCY": "2"})
    event = flow.analysis_event()
    flow.inbox.accept(
        event_id=event["event_id"],
        kind="analysis",
        payload=event,
        payload_hash=payload_hash(event),
    )
    flow.app.send_task(
        "chimera.analysis.start",
        args=[event["event_id"]],
        task_id=handoff_task_id("analysis", event["event_id"]),
        queue=first.settings.celery_queue,
        ignore_result=True,
    )
    wait_for(lambda: sim_calls.calls().total >= 3, timeout_s=60, what="the second pair's calls")
    first.kill()
    second = worker_process(env=FAST_REDELIVERY)
    row = flow.wait_run(run_id(event["event_id"]), timeout_s=120)
    assert len(flow.runs_of(event["event_id"])) == 1
    assert row.status == "ok", row.bundle["errors"]
    assert sorted(row.bundle["analyses"]) == sorted(ANALYSIS_KINDS)
    assert len({row.bundle["analyses"][k]["model"] for k in ANALYSIS_KINDS}) == 4
    # The two kept results were not paid again; at most the two interrupted calls were.
    assert 4 <= sim_calls.calls().total <= 6
    flow.wait_event(event["event_id"], "done")
    assert second.proc.poll() is None
