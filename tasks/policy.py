"""Retry policy shared by every task: plumbing trouble (Redis, Postgres, Kafka away,
a busy lock) is retried with short, growing pauses, a bounded number of times; an
LLM retry or wait is retried as ``chimera.decisions`` decided."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from celery import Task
from celery.exceptions import Retry

from chimera.crashes import CrashCounter
from chimera.decisions import RetryLLM, RetryWait
from chimera.retry import compute_backoff

MAX_PLUMBING_RETRIES = 100


def plumbing_retry(task: Task, exc: BaseException) -> BaseException:
    """The retry to raise for ``exc`` (or ``exc`` itself once the retries are spent)."""
    if not plumbing_retries_left(task):
        return exc
    delay = compute_backoff(task.request.retries + 1, base_s=0.2, cap_s=30.0)
    return task.retry(exc=exc, countdown=delay, max_retries=MAX_PLUMBING_RETRIES)  # type: ignore[no-any-return]


def llm_task_retry(
    task: Task,
    decision: RetryLLM | RetryWait,
    args: tuple[object, ...],
    *,
    attempt: int,
    waits: int,
) -> Retry:
    """The retry to raise for ``decision`` on the task run with ``args``: a ``RetryLLM``
    runs with the next attempt number (and no waits in a row), a ``RetryWait`` with the
    same attempt number and one more wait.  ``max_retries=None``: the decision, not
    Celery's cap, bounds the LLM retries."""
    if isinstance(decision, RetryLLM):
        kwargs = {"attempt": attempt + 1}
    else:  # waiting is no attempt
        kwargs = {"attempt": attempt, "waits": waits + 1}
    return task.retry(
        args=args,
        kwargs=kwargs,
        exc=decision.error,
        countdown=decision.countdown_s,
        max_retries=None,
    )


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
