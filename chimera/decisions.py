"""What a task is told to do after one try, when the answer is "try again".

Conversation turns and analysis parts both retry an LLM failure that may pass
(with a growing, jittered pause the caller's retry budget bounds) and plumbing
trouble (a dependency away, a busy lock).  The choice between them, and the
pause, are made here; a Celery task only maps the answer onto ``self.retry``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chimera.errors import ChimeraError, LLMRetryable
from chimera.retry import compute_backoff


@dataclass(frozen=True)
class RetryLLM:
    """Run again in ``countdown_s`` with the next attempt number: the LLM may answer then."""

    countdown_s: float
    error: LLMRetryable


@dataclass(frozen=True)
class RetryPlumbing:
    """Run again soon with the same attempt number: a dependency or the lock was busy."""

    error: ChimeraError


def llm_retry(
    exc: LLMRetryable, *, attempt: int, max_retries: int, cap_s: float
) -> RetryLLM | None:
    """The retry of LLM attempt ``attempt`` that failed with ``exc``; None once the
    retries are spent (attempt ``max_retries + 1`` is the last one)."""
    if attempt > max_retries:
        return None
    delay = compute_backoff(attempt, base_s=1.0, cap_s=cap_s, server_hint_s=exc.retry_after_s)
    return RetryLLM(delay, exc)
