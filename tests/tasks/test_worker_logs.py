"""A worker in production log mode: JSON lines, each carrying the ids of its task's work."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.events.ids import conversation_id, handoff_task_id
from tests.helpers import wait_for
from tests.tasks.conftest import Flow


@pytest.mark.subprocess_worker
def test_worker_json_logs_name_the_event_and_conversation(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    worker = worker_process(env={"CHIMERA_LOG_FORMAT": "json", "CHIMERA_LOG_LEVEL": "INFO"})
    event = flow.event(min_turns=5, max_turns=5)
    flow.inbox.accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
    )
    flow.app.send_task(
        "chimera.conversation.start",
        args=[event["event_id"]],
        task_id=handoff_task_id("conversation", event["event_id"]),
        queue=worker.settings.celery_queue,
        ignore_result=True,
    )
    cid = conversation_id(event["event_id"])
    flow.wait(cid)

    def ours() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        return [
            r
            for r in lines
            if r.get("conversation_id") == cid or r.get("event_id") == event["event_id"]
        ]

    def both() -> list[dict[str, Any]] | None:
        records = ours()
        messages = [r["message"] for r in records]
        done = any("started for event" in m for m in messages) and any(
            "completed:" in m for m in messages
        )
        return records if done else None

    # The conversation is stored before its worker logs "completed": wait for the line.
    records = wait_for(both, what="the conversation's start and completion log lines")
    started = next(r for r in records if "started for event" in r["message"])
    assert started["task"] == "chimera.conversation.start"
    assert started["event_id"] == event["event_id"] and started["level"] == "INFO"
    completed = next(r for r in records if "completed:" in r["message"])
    assert completed["task"] == "chimera.conversation.finalize"
    assert completed["conversation_id"] == cid and completed["task_id"].endswith(":finalize")
    # No log line escaped the JSON formatter (the start-up banner is printed, not logged).
    text_log = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
    assert [x for x in worker.log().splitlines() if text_log.match(x)] == []
