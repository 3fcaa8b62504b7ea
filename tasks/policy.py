"""Retry policy shared by every task: plumbing trouble (Redis, Postgres, Kafka away,
a busy lock) is retried with short, growing pauses, a bounded number of times."""

from __future__ import annotations

from celery import Task

from chimera.retry import compute_backoff

MAX_PLUMBING_RETRIES = 100


def plumbing_retry(task: Task, exc: BaseException) -> BaseException:
    """The retry to raise for ``exc`` (or ``exc`` itself once the retries are spent)."""
    if task.request.retries >= MAX_PLUMBING_RETRIES:
        return exc
    delay = compute_backoff(task.request.retries + 1, base_s=0.2, cap_s=30.0)
    return task.retry(exc=exc, countdown=delay, max_retries=MAX_PLUMBING_RETRIES)  # type: ignore[no-any-return]
