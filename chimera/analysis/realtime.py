"""The synchronous path: the four analyses of a request now, in parallel, on an executor
(threads or Ray), recorded as a ``realtime`` run (no event, nothing published)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from chimera.analysis.bundle import Aggregate, aggregate
from chimera.analysis.executors import Executor, PartJob
from chimera.analysis.inputs import resolve_input
from chimera.analysis.prompts import resolve_all
from chimera.analysis.repository import RunRecord, RunRepository
from chimera.analysis.runner import target_for
from chimera.events.ids import realtime_run_id
from chimera.models import AnalyzeRequest
from chimera.settings import Settings


@dataclass(frozen=True)
class RealtimeRun:
    run_id: str
    result: Aggregate
    latency_ms: float


class RealtimeAnalyzer:
    def __init__(self, settings: Settings, *, engine: Engine, executor: Executor) -> None:
        self.settings = settings
        self.engine = engine
        self.executor = executor
        self.runs = RunRepository(engine)

    def analyze(self, request: AnalyzeRequest) -> RealtimeRun:
        """Bad prompt ids or a missing context raise before anything is paid for."""
        started = time.monotonic()
        s = self.settings
        specs = resolve_all(request.prompt_ids)
        source = resolve_input(request, self.engine, budget_tokens=s.analysis_input_token_budget)
        rid = realtime_run_id()
        jobs = [
            PartJob(
                prompt_id=spec.id,
                source=source,
                target=target_for(s, kind),
                run_id=rid,
                max_tokens=s.analysis_max_output_tokens,
                max_retries=s.analysis_max_retries,
                timeout_s=s.analyze_timeout_s,
            )
            for kind, spec in specs.items()
        ]
        results = self.executor.run(jobs)
        agg = aggregate({r.kind: r for r in results}, source.describe())
        latency_ms = (time.monotonic() - started) * 1000
        self.runs.record(
            RunRecord(
                id=rid,
                event_id=None,
                context_id=request.context_id,
                language=request.language,
                status=agg.status,
                bundle=agg.bundle,
                worker_statuses=agg.worker_statuses,
                source="realtime",
                latency_ms=latency_ms,
            )
        )
        return RealtimeRun(rid, agg, latency_ms)
