"""Retry policy shared by every task: plumbing trouble (Redis, Postgres, Kafka away,
a busy lock) is retried with short, growing pauses, a bounded number of times."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from celery import Task
from celery.exceptions import Retry

from chimera.crashes import CrashCounter
from chimera.retry import compute_backoff

MAX_PLUMBING_RETRIES = 100


def plumbing_retry(task: Task, exc: BaseException) -> BaseException:
    """The retry to raise for ``exc`` (or ``exc`` itself once the retries are spent)."""
    if not plumbing_retries_left(task):
        return exc
    delay = compute_backoff(task.request.retries + 1, base_s=0.2, cap_s=30.0)
    return task.retry(exc=exc, countdown=delay, max_retries=MAX_PLUMBING_RETRIES)  # type: ignore[no-any-return]


def plumbing_retries_left(task: Task) -> bool:
    """Whether ``plumbing_retry`` would still retry (rather than give ``exc`` back)."""
    return bool(task.request.retries < MAX_PLUMBING_RETRIES)


@contextlib.contextmanager
def counted_run(task: Task, counter: CrashCounter) -> Iterator[int]:
    """Count this run while it lasts; yields how many earlier runs of the same task id
    died with their worker (``CrashCounter.exhausted`` says when to stop trying)."""
    task_id = task.request.id
    if not task_id:  # called directly, not as a task
        yield 0
        return
    crashes = counter.begin(task_id)
    try:
        yield crashes
    except Retry:
        counter.put_back(task_id)
        raise
    except BaseException:
        counter.end(task_id)
        raise
    counter.end(task_id)
