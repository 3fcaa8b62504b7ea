"""Deterministic ids derived from an input event, so every re-run finds the same things."""

from __future__ import annotations

import hashlib


def _digest(event_id: str, n: int = 24) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:n]


def conversation_id(event_id: str) -> str:
    """The conversation an event creates (<= 64 chars, the column's width)."""
    return f"conv-{_digest(event_id)}"


def run_id(event_id: str) -> str:
    """The analysis run an event creates."""
    return f"run-{_digest(event_id)}"


def handoff_task_id(kind: str, event_id: str) -> str:
    """The Celery task id of an event's hand-off: a repeated hand-off is the same task."""
    return f"{kind}:start:{_digest(event_id, 32)}"


def turn_task_id(conversation: str, turn_index: int) -> str:
    return f"{conversation}:turn:{turn_index}"


def finalize_task_id(conversation: str) -> str:
    return f"{conversation}:finalize"
