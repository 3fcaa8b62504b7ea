"""Conversations that opt in are analysed on completion: the two pipelines chained."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.events.ids import conversation_id, handoff_task_id, run_id
from tests.tasks.conftest import Flow


@pytest.mark.subprocess_worker
def test_a_completed_conversation_is_analysed_once_when_asked_to(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    worker = worker_process(env={"CHIMERA_ANALYZE_COMPLETED_CONVERSATIONS": "true"})
    event = flow.event(min_turns=5, max_turns=5)
    flow.inbox.accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
    )
    for _ in range(2):  # a repeated hand-off changes nothing
        flow.app.send_task(
            "chimera.conversation.start",
            args=[event["event_id"]],
            task_id=handoff_task_id("conversation", event["event_id"]),
            queue=worker.settings.celery_queue,
            ignore_result=True,
        )

    cid = conversation_id(event["event_id"])
    flow.wait(cid)
    analysis_event = f"analysis-of-{cid}"
    row = flow.wait_run(run_id(analysis_event))
    assert row.status == "ok" and row.context_id == cid
    assert row.bundle["input"]["source"] == "conversation"
    flow.wait_event(analysis_event, "done")
    assert len(flow.runs_of(analysis_event)) == 1
    assert sim_calls.calls().total == 5 + 4  # five turns, four analyses
