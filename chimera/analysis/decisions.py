"""What an analysis task does next: the decisions of its start and of each analysis.

A Celery task is an adapter: it passes ids to one function here and maps the answer
onto Celery (send a chord, return a result, ``self.retry``).  Every choice about the
work is made here, where it can be tested without a worker: whether a chord is
sent, when an analysis's LLM retries are spent and how long to wait, when it gives
up and reports an ``error`` result instead.  An analysis never raises once it gives
up, so its chord's callback always runs and records ``partial`` or ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chimera import defaults as d
from chimera.analysis.runner import PartResult
from chimera.analysis.service import AnalysisService
from chimera.crashes import CrashCounter
from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait, llm_again
from chimera.errors import ChimeraError, CrashLoop, LLMRetryable, ServiceUnavailable
from chimera.models import ANALYSIS_KINDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChordToSend:
    """One analysis per kind, then the aggregating callback, for the event's run."""

    event_id: str
    run_id: str
    kinds: tuple[str, ...] = ANALYSIS_KINDS


@dataclass(frozen=True)
class PartDone:
    """The analysis's result, ``ok`` or ``error``: what the task returns to its chord."""

    result: dict[str, Any]


PartDecision = PartDone | RetryLLM | RetryWait | RetryPlumbing


def dispatch(
    service: AnalysisService, event_id: str, *, resume: bool = False
) -> ChordToSend | None:
    """Check the event; the chord to send, or None: nothing to run (done before, or
    input that can never be analysed, dead-lettered then), or its chord went out
    before (unless ``resume``: the reconciler re-sends a chord that was lost; stored
    results keep it from paying twice)."""
    prepared = service.start(event_id)
    if prepared is None:
        return None
    if not service.parts.mark_sent(prepared.run_id) and not resume:
        return None
    return ChordToSend(event_id, prepared.run_id)


def attempt_part(
    service: AnalysisService,
    event_id: str,
    kind: str,
    *,
    attempt: int = 1,
    crashes: int = 0,
    plumbing_retries_left: bool = True,
    waits: int = 0,
) -> PartDecision:
    """Run one analysis once (LLM attempt ``attempt``); its result or a retry.

    A retryable LLM failure is retried while ``CHIMERA_ANALYSIS_MAX_RETRIES`` allows,
    plumbing trouble while ``plumbing_retries_left``; waiting for the limiter, the
    breaker or a provider's ``retry-after`` is no attempt (``waits`` counts those in
    a row, ``chimera.decisions.llm_wait``); then, and for anything else
    (one whose earlier runs died with their worker ``crashes`` times too), the
    analysis reports an ``error`` result instead.
    """
    if CrashCounter.exhausted(crashes):
        crash = CrashLoop(f"{kind} died with its worker {crashes} times", event_id=event_id)
        return give_up(service, event_id, kind, crash, attempt)
    try:
        return PartDone(service.run_part(event_id, kind, attempt=attempt).to_dict())
    except Exception as exc:  # an analysis reports; it never breaks its chord
        return _after_failure(
            service,
            event_id,
            kind,
            exc,
            attempt,
            plumbing_retries_left=plumbing_retries_left,
            waits=waits,
        )


def _after_failure(
    service: AnalysisService,
    event_id: str,
    kind: str,
    exc: Exception,
    attempt: int,
    *,
    plumbing_retries_left: bool,
    waits: int = 0,
) -> PartDecision:
    """Wait out what may pass, while the retries last; report the rest as an error."""
    if isinstance(exc, LLMRetryable):
        again = llm_again(
            exc,
            attempt=attempt,
            waits=waits,
            max_retries=service.settings.analysis_max_retries,
            cap_s=d.ANALYSIS_RETRY_CAP_S,
            settings=service.settings,
            subject=f"analysis {kind} of {event_id}",
        )
        if again is not None:
            service.waiting_to_retry(event_id, kind, again.countdown_s)
            return again
    elif isinstance(exc, ServiceUnavailable):
        if plumbing_retries_left:
            return RetryPlumbing(exc)
    else:
        log.error("analysis %s of %s failed unexpectedly", kind, event_id, exc_info=exc)
    return give_up(service, event_id, kind, exc, attempt)


def give_up(
    service: AnalysisService, event_id: str, kind: str, exc: BaseException, attempt: int
) -> PartDone:
    """The analysis's ``error`` result, kept (the first result still wins); with the
    store away too, reported without keeping."""
    try:
        kept = service.give_up_part(event_id, kind, exc, attempts=attempt)
    except ChimeraError:
        kept = PartResult(
            kind, "error", f"{kind}.v1", error_class=type(exc).__name__, error=str(exc)[:500]
        )
    return PartDone(kept.to_dict())
