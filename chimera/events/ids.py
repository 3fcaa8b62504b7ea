"""Every id Chimera derives, in one place.

Ids are derived from the input event (or from an id derived from it), never
drawn at random, so every re-run of a step finds the same conversation, run,
Celery task and output event: a repeat is a duplicate, never a new fact.  The
one exception, the realtime run id, has no input event to derive from.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

#: Event ids are at most this long (the ``events.event_id`` column).
MAX_EVENT_ID_CHARS = 128


def _digest(text: str, n: int = 24) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# --- what an input event creates ----------------------------------------------------------


def conversation_id(event_id: str) -> str:
    """The conversation an event creates (<= 64 chars, the column's width)."""
    return f"conv-{_digest(event_id)}"


def run_id(event_id: str) -> str:
    """The analysis run an event creates."""
    return f"run-{_digest(event_id)}"


def realtime_run_id() -> str:
    """A run of the synchronous endpoint: no event to derive it from, so random."""
    return f"run-rt-{uuid.uuid4().hex[:24]}"


# --- input events Chimera makes itself ----------------------------------------------------


def analysis_event_id(conversation: str) -> str:
    """The analysis event of a completed conversation: one per conversation."""
    return f"analysis-of-{conversation}"


#: Every topic-queue event id begins so.
TOPIC_EVENT_PREFIX = "topics:"
#: The topic queue's job: every conversation the queue starts is one of its.  Fixed, not
#: derived from a spec (the queue has no stored topics); never the ``job-`` + 24 hex
#: digits of a created job.
TOPIC_QUEUE_JOB = "job-topic-queue"


def topic_event_id(topic: dict[str, Any]) -> str:
    """The `conversation.new` event of a topic-queue item: the topic's ``id``, else a
    hash of its content, so a topic queued twice is one event."""
    key = str(topic.get("id") or _digest(json.dumps(topic, sort_keys=True)))
    return f"{TOPIC_EVENT_PREFIX}{key}"[:MAX_EVENT_ID_CHARS]


def job_id(spec: dict[str, Any], topic_lines: Any) -> str:
    """A job's id: a hash of its spec and of its topics' content, in order, so the
    same job created twice is one job.  ``topic_lines`` is an iterable of canonical
    JSON strings, read once (a file of any size is never held whole)."""
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for line in topic_lines:
        h.update(b"\n")
        h.update(line.encode())
    return f"job-{h.hexdigest()[:24]}"


JOB_EVENT_SEPARATOR = ":c"


def job_event_id(job: str, position: int) -> str:
    """The `conversation.new` event of a job's ``position``-th conversation (0-based;
    with a target, positions go on past the topic count, cycling the topics)."""
    return f"{job}{JOB_EVENT_SEPARATOR}{position}"


def job_of_event(event_id: str) -> str | None:
    """The job whose `job_event_id` ``event_id`` is (a topic-queue event's:
    ``TOPIC_QUEUE_JOB``), or None."""
    if event_id.startswith(TOPIC_EVENT_PREFIX):
        return TOPIC_QUEUE_JOB
    job, sep, position = event_id.rpartition(JOB_EVENT_SEPARATOR)
    if sep and job.startswith("job-") and position.isdigit():
        return job
    return None


# --- output events ---------------------------------------------------------------------------


def output_event_id(owner_id: str, event_type: str, index: int | None = None) -> str:
    """The deterministic id of an output event: one per (owner, type, turn)."""
    suffix = "" if index is None else f":{index}"
    return f"{owner_id}:{event_type}{suffix}"


# --- Celery task ids -------------------------------------------------------------------------


def handoff_task_id(kind: str, event_id: str) -> str:
    """The Celery task id of an event's hand-off: a repeated hand-off is the same task."""
    return f"{kind}:start:{_digest(event_id, 32)}"


def turn_task_id(conversation: str, turn_index: int) -> str:
    """One turn's task: a re-sent chain is the same tasks."""
    return f"{conversation}:turn:{turn_index}"


def finalize_task_id(conversation: str) -> str:
    return f"{conversation}:finalize"


def part_task_id(run: str, kind: str) -> str:
    """One analysis of a run's chord: a re-sent chord is the same header tasks."""
    return f"{run}:{kind}"


def aggregate_task_id(run: str) -> str:
    return f"{run}:aggregate"
