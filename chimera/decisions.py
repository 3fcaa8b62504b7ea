"""What a task is told to do after one try, when the answer is "try again" or "wait".

Conversation turns and analysis parts both retry an LLM failure that may pass
(with a growing, jittered pause the caller's retry budget bounds) and plumbing
trouble (a dependency away, a busy lock).  The choice between them, and the
pause, are made here; a Celery task only maps the answer onto ``self.retry``.

Waiting is not an attempt (``llm_wait``): the fleet-wide limiter turning a call
away (``LimiterRefused``), the breaker open (``CircuitOpen``) or a provider's 429
with a ``retry-after`` (the provider names when it can take the call: the call was
early, not failed) re-schedule the work after the wait with the SAME attempt
number, so a long backlog at the rate limit never spends LLM retries.  The safety
valve: after ``MAX_WAITS`` waits in a row, a wait counts as an attempt again (and a
conversation's deadline still applies to its waits).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chimera.errors import ChimeraError, CircuitOpen, LimiterRefused, LLMRetryable, RateLimited
from chimera.retry import compute_backoff

if TYPE_CHECKING:
    from chimera.settings import Settings

log = logging.getLogger(__name__)

#: Waits in a row (see ``llm_wait``) after which a wait counts as an attempt again.
MAX_WAITS = 500
#: The pause of a wait without a hint, in seconds.
DEFAULT_WAIT_S = 1.0


@dataclass(frozen=True)
class RetryLLM:
    """Run again in ``countdown_s`` with the next attempt number: the LLM may answer then."""

    countdown_s: float
    error: LLMRetryable


@dataclass(frozen=True)
class RetryWait:
    """Run again in ``countdown_s`` with the SAME attempt number and one more wait: the
    call waited for the limiter, the breaker or a provider's ``retry-after``."""

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


def is_wait(exc: LLMRetryable) -> bool:
    """Whether ``exc`` says "not yet" rather than "failed": the limiter or the breaker
    turned the call away, or the provider's 429 named when to come back."""
    if isinstance(exc, LimiterRefused | CircuitOpen):
        return True
    return isinstance(exc, RateLimited) and exc.retry_after_s is not None


def llm_wait(exc: LLMRetryable, *, waits: int, cap_s: float) -> RetryWait | None:
    """The wait ``exc`` asks for (the ``waits``-th before it in a row); None when it is
    no wait, or when ``MAX_WAITS`` is spent (then it counts as an attempt)."""
    if not is_wait(exc) or waits >= MAX_WAITS:
        return None
    hint = exc.retry_after_s if exc.retry_after_s and exc.retry_after_s > 0 else DEFAULT_WAIT_S
    # A little spread, so the callers turned away together do not all come back together.
    spread = float(random.Random().random())  # noqa: S311 - timing, not secrecy
    return RetryWait(min(cap_s, min(cap_s, hint) * (1 + 0.2 * spread)), exc)


def llm_again(
    exc: LLMRetryable,
    *,
    attempt: int,
    waits: int,
    max_retries: int,
    cap_s: float,
    settings: Settings,
    subject: str,
) -> RetryLLM | RetryWait | None:
    """What the retryable LLM failure ``exc`` of LLM attempt ``attempt`` asks for: a wait
    (``llm_wait``, no attempt; ``waits`` came before it in a row), else the retry of the
    attempt (``llm_retry``), else None: the ``max_retries`` are spent.  Its countdown is
    at most ``cap_s`` and what the broker's visibility timeout allows (``countdown_cap``);
    it is logged at INFO, naming ``subject`` (the work: a turn, an analysis)."""
    cap = countdown_cap(cap_s, settings.visibility_timeout_s, settings.task_time_limit_s)
    wait = llm_wait(exc, waits=waits, cap_s=cap)
    if wait is not None:
        log.info(
            "%s: %s; waiting %.1fs (wait %d, still attempt %d)",
            subject,
            type(exc).__name__,
            wait.countdown_s,
            waits + 1,
            attempt,
        )
        return wait
    retry = llm_retry(exc, attempt=attempt, max_retries=max_retries, cap_s=cap)
    if retry is not None:
        log.info(
            "%s: %s; retry %d in %.1fs", subject, type(exc).__name__, attempt, retry.countdown_s
        )
    return retry


def countdown_cap(cap_s: float, visibility_timeout_s: float, task_time_limit_s: float) -> float:
    """The longest countdown a retried task may take: ``cap_s``, and half of what the
    broker's visibility timeout leaves after the task's own time limit.  A task is
    unacked from its delivery (countdown included) until it finishes; one unacked for
    longer than the visibility timeout is delivered again and runs twice.  A wait cut
    short is no loss: the limiter's hold from the provider's retry-after turns the early
    retry away locally, as one more wait."""
    return max(0.1, min(cap_s, (visibility_timeout_s - task_time_limit_s) / 2))
