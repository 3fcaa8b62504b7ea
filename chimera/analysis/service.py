"""The analysis service: what the Celery chord's tasks and the synchronous endpoint call.

Kafka path (each step idempotent, ids derived from the event):

- ``start``: check the event (prompts known, context stored); bad input is
  dead-lettered here, once, before anything is paid for;
- ``run_part``: one analysis; its result is kept under (run, analysis) the first
  time, so a re-run header returns the same result without calling again;
- ``finish``: aggregate, then one transaction writes the run row, settles the
  inbox event and (for a new row only) publishes ``analysis.completed`` and,
  when all four failed, the dead letter.

The realtime path is ``chimera.analysis.realtime``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from chimera.analysis.bundle import Aggregate, aggregate
from chimera.analysis.inputs import AnalysisInput, resolve_input
from chimera.analysis.prompts import PromptSpec, resolve_all
from chimera.analysis.reconcile import StuckAnalyses
from chimera.analysis.repository import RunRecord, RunRepository
from chimera.analysis.runner import PartResult, run_once, target_for
from chimera.analysis.store import PartStore
from chimera.codec import payload_hash, validate_event
from chimera.errors import (
    AnalysisAbandoned,
    AnalysisFailed,
    ConflictingDuplicate,
    DataRejected,
    InputError,
    NotFound,
)
from chimera.events import intake
from chimera.events.deadletters import DeadLetter
from chimera.events.ids import analysis_event_id, output_event_id, run_id
from chimera.events.inbox import FINAL, Arrival, EventStatus, Inbox, InboxEvent
from chimera.events.reconcile import Decision
from chimera.events.sink import EventSink
from chimera.llm.client import LLMClient
from chimera.models import ANALYSIS_KINDS, AnalysisCompleted, AnalysisTask
from chimera.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """An analysis event, checked and ready to run."""

    event: InboxEvent
    task: AnalysisTask
    specs: dict[str, PromptSpec]
    source: AnalysisInput

    @property
    def run_id(self) -> str:
        return run_id(self.event.event_id)


class AnalysisService:
    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLMClient,
        engine: Engine,
        parts: PartStore,
        inbox: Inbox,
        sink: EventSink,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.engine = engine
        self.parts = parts
        self.runs = RunRepository(engine)
        self.inbox = inbox
        self.sink = sink

    # --- the Kafka path ------------------------------------------------------------------

    def request_for_conversation(self, cid: str) -> str | None:
        """Record an analysis event for the completed conversation ``cid`` (once); its id
        if it still has to be handed off, else None."""
        event = {"event_id": analysis_event_id(cid), "context_id": cid}
        arrival = Arrival(event["event_id"], "analysis", event, payload_hash(event))
        (acceptance,) = intake.accept(self.inbox, [arrival])
        if isinstance(acceptance, ConflictingDuplicate):
            raise acceptance
        return event["event_id"] if acceptance.hand_off else None

    def prepare(self, event_id: str) -> Prepared:
        recorded = self.inbox.get(event_id)
        if recorded is None:
            raise NotFound("no such event in the inbox", event_id=event_id)
        task = validate_event(AnalysisTask, recorded.payload)
        specs = resolve_all(task.prompt_ids)
        source = resolve_input(
            task, self.engine, budget_tokens=self.settings.analysis_input_token_budget
        )
        return Prepared(recorded, task, specs, source)

    def start(self, event_id: str) -> Prepared | None:
        """The checked event, or None when there is nothing to run (done before, or its
        input can never be analysed: then it is dead-lettered)."""
        try:
            prepared = self.prepare(event_id)
        except (InputError, DataRejected) as exc:
            self.reject(event_id, exc)
            return None
        if prepared.event.status in FINAL:
            return None
        status = self.runs.status(prepared.run_id)
        if status == "failed":
            # A failed run and its event's dead_lettered status are written in one
            # transaction: an event back in flight beside a failed run was replayed
            # (`chimera dlq replay`).  Forget that run so the analyses run again.
            self.parts.forget(prepared.run_id, ANALYSIS_KINDS)
            if self.runs.reopen(prepared.run_id):
                log.info(
                    "analysis run %s reopened for replayed event %s", prepared.run_id, event_id
                )
            status = self.runs.status(prepared.run_id)
        if status is not None:
            return None
        self.inbox.mark(event_id, EventStatus.DISPATCHED)
        return prepared

    def reject(self, event_id: str, exc: InputError | DataRejected) -> None:
        """Dead-letter an event whose input cannot be analysed or stored (once)."""
        recorded = self.inbox.get(event_id)
        if recorded is None or recorded.status in FINAL:
            return
        self._dead_letter(recorded, exc)
        error = f"{type(exc).__name__}: {exc.message}"
        self.inbox.mark(event_id, EventStatus.DEAD_LETTERED, error=error)
        log.warning("analysis event %s dead-lettered: %s", event_id, exc)

    def judge_stuck(self, event: InboxEvent) -> Decision:
        """What the reconciler (``chimera.events.reconcile``) should do with this event."""
        return StuckAnalyses(runs=self.runs, parts=self.parts)(event)

    def abandon(self, event_id: str, why: str) -> None:
        """Give up on an event the reconciler could not get done: dead-letter it."""
        recorded = self.inbox.get(event_id)
        if recorded is None or recorded.status in FINAL:
            return
        self._dead_letter(recorded, AnalysisAbandoned(why, event_id=event_id))
        self.inbox.mark(event_id, EventStatus.DEAD_LETTERED, error=f"AnalysisAbandoned: {why}")

    def run_part(self, event_id: str, kind: str, *, attempt: int = 1) -> PartResult:
        """One analysis of the event; ``LLMRetryable`` propagates for the task to retry."""
        rid = run_id(event_id)
        stored = self.parts.get(rid, kind)
        if stored is not None:
            return stored
        prepared = self.prepare(event_id)
        spec = prepared.specs[kind]
        if self.runs.status(rid) is not None:  # a late redelivery: the run is recorded, pay nothing
            return PartResult(kind, "error", spec.id, error_class="RunAlreadyRecorded")
        self.parts.hold(rid, kind, self.settings.task_time_limit_s)
        result = run_once(
            self.llm,
            spec,
            prepared.source,
            target_for(self.settings, kind),
            run_id=rid,
            max_tokens=self.settings.analysis_max_output_tokens,
            attempt=attempt,
        )
        return self.parts.put(rid, result)

    def waiting_to_retry(self, event_id: str, kind: str, delay_s: float) -> None:
        """An analysis will run again in ``delay_s``: its run is slow, not stuck."""
        self.parts.hold(run_id(event_id), kind, delay_s + self.settings.task_time_limit_s)

    def give_up_part(
        self, event_id: str, kind: str, exc: BaseException, *, attempts: int
    ) -> PartResult:
        """Record an analysis that ran out of retries as failed (first result still wins)."""
        rid = run_id(event_id)
        prompt_id = (self._prompt_ids(event_id) or {}).get(kind) or f"{kind}.v1"
        result = PartResult(
            kind,
            "error",
            prompt_id,
            error_class=type(exc).__name__,
            error=str(exc)[:500],
            attempts=attempts,
        )
        return self.parts.put(rid, result)

    def finish(self, event_id: str, results: list[dict[str, object]]) -> Aggregate:
        """Aggregate the header results; record, publish and settle the event once."""
        prepared = self.prepare(event_id)
        parts = {}
        for raw in results:
            if isinstance(raw, dict) and raw.get("kind") in ANALYSIS_KINDS:
                part = PartResult.from_dict(dict(raw))
                parts[part.kind] = part
        agg = aggregate(parts, prepared.source.describe())
        created = prepared.event.created_at
        latency_ms = (
            (datetime.now(UTC) - created).total_seconds() * 1000 if created is not None else None
        )
        rid = prepared.run_id
        record = RunRecord(
            id=rid,
            event_id=event_id,
            context_id=prepared.task.context_id,
            language=prepared.task.language,
            status=agg.status,
            bundle=agg.bundle,
            worker_statuses=agg.worker_statuses,
            source="kafka",
            latency_ms=latency_ms,
        )

        def publish() -> None:
            self.sink.publish(
                AnalysisCompleted(
                    event_id=output_event_id(rid, "analysis.completed"),
                    conversation_id=prepared.task.context_id,
                    source_event_id=event_id,
                    run_id=rid,
                    status=agg.status,
                    bundle=agg.bundle,
                    worker_statuses=agg.bundle["worker_statuses"],
                )
            )
            if agg.status == "failed":
                self._dead_letter(prepared.event, AnalysisFailed(_failures(agg), event_id=event_id))

        try:
            recorded = self.runs.record(record, on_insert=publish)
        except DataRejected as exc:  # Postgres refused the run's data: no retry can help
            self.reject(event_id, exc)
            return agg
        if recorded:
            log.info("analysis run %s for event %s: %s", rid, event_id, agg.status)
        self.parts.forget(rid, ANALYSIS_KINDS)
        return agg

    # --- helpers -------------------------------------------------------------------------

    def _prompt_ids(self, event_id: str) -> dict[str, str] | None:
        recorded = self.inbox.get(event_id)
        if recorded is None:
            return None
        ids = recorded.payload.get("prompt_ids")
        return ids if isinstance(ids, dict) else None

    def _dead_letter(self, recorded: InboxEvent, error: BaseException) -> None:
        """Keyed by the context id (the key analysis records carry) when there is one."""
        context = recorded.payload.get("context_id")
        key = context if isinstance(context, str) and context else None
        letter = DeadLetter.of_event(recorded, error, key=key)
        self.sink.dead_letter(self.settings.topic_analysis_dlq, letter)


def _failures(agg: Aggregate) -> str:
    parts = [f"{k}: {v.get('error_class')}" for k, v in agg.worker_statuses.items()]
    return "all four analyses failed (" + "; ".join(parts) + ")"
