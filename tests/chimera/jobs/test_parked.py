"""Parked conversations of a paused job (chimera/jobs/control.py) on the real Redis."""

from __future__ import annotations

from typing import Any

from chimera.jobs.control import JobControl


def test_parked_conversations_are_taken_once(redis_client: Any, redis_ns: Any) -> None:
    control = JobControl(redis_client, redis_ns, load=lambda _job_id: None)
    for event_id in ("e2", "e1", "e3"):
        control.park("job-1", event_id)
    control.park("job-2", "other")
    assert control.parked("job-1") == ["e1", "e2", "e3"]
    # A control's immediate feed and beat's round may both take: only one gets them.
    assert control.take_parked("job-1") == ["e1", "e2", "e3"]
    assert control.take_parked("job-1") == []
    assert control.parked("job-2") == ["other"]
    control.park("job-1", "e4")  # parked after the take: kept for the next
    assert control.take_parked("job-1") == ["e4"]
