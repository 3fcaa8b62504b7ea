"""Analysis tasks: the hand-off builds a chord of four analyses and an aggregating callback.

Ids come from the event (``run-…:summary``, ``run-…:aggregate``).  A header task
never raises once its retries are spent: it returns an ``error`` result, so the
callback always runs and records ``partial`` or ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chord, shared_task

from chimera.analysis.decisions import PartDone, attempt_part, dispatch
from chimera.decisions import RetryLLM, RetryPlumbing, RetryWait
from chimera.errors import ServiceUnavailable
from chimera.events.ids import aggregate_task_id, part_task_id
from tasks.policy import counted_run, llm_task_retry, plumbing_retries_left, plumbing_retry
from tasks.runtime import runtime

log = logging.getLogger(__name__)


@shared_task(name="chimera.analysis.start", bind=True, acks_late=True, ignore_result=True)
def start(self: Task, event_id: str, resume: bool = False) -> None:
    """Check the event and send its chord (once, unless ``resume``: the reconciler
    re-sends a chord that was lost; stored results keep it from paying twice)."""
    try:
        send = dispatch(runtime().analysis, event_id, resume=resume)
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc
    if send is None:
        return
    run = send.run_id
    header = [part.si(event_id, kind).set(task_id=part_task_id(run, kind)) for kind in send.kinds]
    chord(header)(aggregate.s(event_id).set(task_id=aggregate_task_id(run)))
    log.info("analysis %s: chord of %d sent for event %s", run, len(header), event_id)


# max_retries=None: CHIMERA_ANALYSIS_MAX_RETRIES bounds the LLM retries, not Celery's 3.
@shared_task(name="chimera.analysis.part", bind=True, acks_late=True, max_retries=None)
def part(self: Task, event_id: str, kind: str, attempt: int = 1, waits: int = 0) -> dict[str, Any]:
    """One analysis: its result, ok or error, or a retry
    (``chimera.analysis.decisions.attempt_part`` decides)."""
    rt = runtime()
    with counted_run(self, rt.crashes) as crashes:
        decision = attempt_part(
            rt.analysis,
            event_id,
            kind,
            attempt=attempt,
            crashes=crashes,
            plumbing_retries_left=plumbing_retries_left(self),
            waits=waits,
        )
        match decision:
            case PartDone(result=result):
                return result
            case RetryLLM() | RetryWait():
                retry = llm_task_retry(
                    self, decision, (event_id, kind), attempt=attempt, waits=waits
                )
                raise retry from decision.error
            case RetryPlumbing(error=exc):
                raise plumbing_retry(self, exc) from exc


@shared_task(name="chimera.analysis.aggregate", bind=True, acks_late=True, ignore_result=True)
def aggregate(self: Task, results: list[dict[str, Any]], event_id: str) -> str:
    """Record the run (once), publish it, and dead-letter the event if all four failed."""
    try:
        return runtime().analysis.finish(event_id, results).status
    except ServiceUnavailable as exc:
        raise plumbing_retry(self, exc) from exc
