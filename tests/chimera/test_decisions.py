"""The shared retry decision: retry an LLM failure while the budget lasts, never past it."""

from __future__ import annotations

import pytest

from chimera.decisions import MAX_WAITS, RetryLLM, RetryWait, countdown_cap, llm_retry, llm_wait
from chimera.errors import (
    CircuitOpen,
    LimiterRefused,
    LLMBadRequest,
    LLMRefused,
    ProviderOverloaded,
    RateLimited,
    RetriesExhausted,
    Unrecoverable,
)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_an_llm_failure_is_retried_while_the_budget_lasts(attempt: int) -> None:
    exc = RateLimited("slow down")
    retry = llm_retry(exc, attempt=attempt, max_retries=3, cap_s=60.0)
    assert isinstance(retry, RetryLLM) and retry.error is exc
    # Exponential with at most a quarter taken off by the jitter.
    assert 0.75 * 2 ** (attempt - 1) <= retry.countdown_s <= 2 ** (attempt - 1)


def test_the_attempt_after_the_budget_gets_no_retry() -> None:
    assert llm_retry(RateLimited("slow down"), attempt=4, max_retries=3, cap_s=60.0) is None
    assert llm_retry(RateLimited("slow down"), attempt=1, max_retries=0, cap_s=60.0) is None


def test_the_server_hint_wins_when_longer_but_stays_capped() -> None:
    hinted = llm_retry(RateLimited("wait", retry_after_s=9.0), attempt=1, max_retries=3, cap_s=60.0)
    assert hinted is not None and hinted.countdown_s == 9.0
    capped = llm_retry(
        RateLimited("wait", retry_after_s=900.0), attempt=1, max_retries=3, cap_s=5.0
    )
    assert capped is not None and capped.countdown_s == 5.0


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (Unrecoverable, "error"),
        (LLMRefused, "llm_permanent"),
        (RetriesExhausted, "retries_exhausted"),
    ],
)
def test_a_failure_that_ends_the_work_names_its_reason_and_keeps_its_cause(
    cls: type[Unrecoverable], reason: str
) -> None:
    cause = LLMBadRequest("400 from the provider", conversation_id="conv-1")
    error = cls(cause)
    assert error.dlq_reason == reason and error.cause is cause
    assert error.message == "400 from the provider" and not error.retryable


def test_waiting_is_told_from_failing() -> None:
    """The limiter, the breaker and a provider's 429 with retry-after say "not yet"."""
    for exc in (
        LimiterRefused("at the limit", retry_after_s=2.0),
        CircuitOpen("open", retry_after_s=2.0),
        RateLimited("429", retry_after_s=2.0),
    ):
        wait = llm_wait(exc, waits=0, cap_s=60.0)
        assert isinstance(wait, RetryWait) and wait.error is exc
        assert 2.0 <= wait.countdown_s <= 2.4  # the hint, spread upwards a little
    assert llm_wait(RateLimited("429 without a hint"), waits=0, cap_s=60.0) is None
    assert llm_wait(ProviderOverloaded("503"), waits=0, cap_s=60.0) is None
    hinted = llm_wait(CircuitOpen("open", retry_after_s=3600.0), waits=0, cap_s=60.0)
    assert hinted is not None and hinted.countdown_s <= 72.0
    # The safety valve: after MAX_WAITS waits in a row a wait counts as an attempt.
    assert llm_wait(LimiterRefused("at the limit"), waits=MAX_WAITS - 1, cap_s=60.0) is not None
    assert llm_wait(LimiterRefused("at the limit"), waits=MAX_WAITS, cap_s=60.0) is None


def test_a_countdown_leaves_the_task_its_time_within_the_visibility_timeout() -> None:
    """A task unacked longer than the broker's visibility timeout (its countdown and its
    run) is delivered again and runs twice: every countdown leaves room for both."""
    assert countdown_cap(120.0, 3_600, 300) == 120.0
    assert countdown_cap(120.0, 14, 7) == 3.5
    hinted = RateLimited("429", retry_after_s=12.0)
    for waits in range(50):  # the spread never takes a wait past its cap
        wait = llm_wait(hinted, waits=waits % 5, cap_s=countdown_cap(120.0, 14, 7))
        assert wait is not None and 0 < wait.countdown_s <= 3.5
