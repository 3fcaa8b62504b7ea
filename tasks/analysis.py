"""Analysis tasks: the hand-off builds a chord of four analyses and an aggregating callback.

Ids come from the event (``run-…:summary``, ``run-…:aggregate``).  A header task
never raises once its retries are spent: it returns an ``error`` result, so the
callback always runs and records ``partial`` or ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chord, shared_task

from chimera import defaults as d
from chimera.analysis.runner import PartResult
from chimera.crashes import CrashCounter
from chimera.errors import ChimeraError, CrashLoop, LLMRetryable, ServiceUnavailable
from chimera.models import ANALYSIS_KINDS
from chimera.retry import compute_backoff
from tasks.policy import MAX_PLUMBING_RETRIES, counted_run, plumbing_retry
from tasks.runtime import Runtime, runtime

log = logging.getLogger(__name__)


def part_task_id(run: str, kind: str) -> str:
    return f"{run}:{kind}"


def aggregate_task_id(run: str) -> str:
    return f"{run}:aggregate"


@shared_task(name="chimera.analysis.start", bind=True, acks_late=True, ignore_result=True)
def start(self: Task, event_id: str, resume: bool = False) -> None:
    """Check the event and send its chord (once, unless ``resume``: the reconciler
    re-sends a chord that was lost; stored results keep it from paying twice)."""
    service = runtime().analysis
    try:
        prepared = service.start(event_id)
        if prepared is None:
            return
        if not service.parts.mark_sent(prepared.run_id) and not resume:
            return
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc
    run = prepared.run_id
    header = [
        part.si(event_id, kind).set(task_id=part_task_id(run, kind)) for kind in ANALYSIS_KINDS
    ]
    chord(header)(aggregate.s(event_id).set(task_id=aggregate_task_id(run)))
    log.info("analysis %s: chord of %d sent for event %s", run, len(header), event_id)


# max_retries=None: CHIMERA_ANALYSIS_MAX_RETRIES bounds the LLM retries, not Celery's 3.
@shared_task(name="chimera.analysis.part", bind=True, acks_late=True, max_retries=None)
def part(self: Task, event_id: str, kind: str, attempt: int = 1) -> dict[str, Any]:
    """One analysis: its result, ok or error; retried while the failure may pass.  One
    whose runs keep dying with their worker reports an error instead of running again."""
    rt = runtime()
    with counted_run(self, rt.crashes) as crashes:
        if CrashCounter.exhausted(crashes):
            error = CrashLoop(f"{kind} died with its worker {crashes} times", event_id=event_id)
            return _give_up(event_id, kind, error, attempt)
        return _part(self, rt, event_id, kind, attempt)


def _part(self: Task, rt: Runtime, event_id: str, kind: str, attempt: int) -> dict[str, Any]:
    service = rt.analysis
    try:
        return service.run_part(event_id, kind, attempt=attempt).to_dict()
    except LLMRetryable as exc:
        if attempt > rt.settings.analysis_max_retries:
            return _give_up(event_id, kind, exc, attempt)
        delay = compute_backoff(
            attempt, base_s=1.0, cap_s=d.ANALYSIS_RETRY_CAP_S, server_hint_s=exc.retry_after_s
        )
        log.info("analysis %s of %s: %s; retry in %.1fs", kind, event_id, exc, delay)
        service.waiting_to_retry(event_id, kind, delay)
        raise self.retry(
            args=(event_id, kind),
            kwargs={"attempt": attempt + 1},
            exc=exc,
            countdown=delay,
            max_retries=None,
        ) from exc
    except ServiceUnavailable as exc:
        if self.request.retries >= MAX_PLUMBING_RETRIES:
            return _give_up(event_id, kind, exc, attempt)
        raise plumbing_retry(self, exc) from exc
    except Exception as exc:  # an analysis reports; it never breaks its chord
        log.exception("analysis %s of %s failed unexpectedly", kind, event_id)
        return _give_up(event_id, kind, exc, attempt)


@shared_task(name="chimera.analysis.aggregate", bind=True, acks_late=True, ignore_result=True)
def aggregate(self: Task, results: list[dict[str, Any]], event_id: str) -> str:
    """Record the run (once), publish it, and dead-letter the event if all four failed."""
    try:
        return runtime().analysis.finish(event_id, results).status
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc


def _give_up(event_id: str, kind: str, exc: BaseException, attempt: int) -> dict[str, Any]:
    try:
        kept = runtime().analysis.give_up_part(event_id, kind, exc, attempts=attempt)
    except ChimeraError:  # the store is away too: report without keeping
        kept = PartResult(
            kind, "error", f"{kind}.v1", error_class=type(exc).__name__, error=str(exc)[:500]
        )
    return kept.to_dict()
