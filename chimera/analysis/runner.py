"""One analysis through the LLM layer: request, structured answer, checks, result.

``run_once`` makes one attempt and raises ``LLMRetryable`` for the caller's retry
policy (Celery retries the task; the synchronous path loops in ``run_with_retries``).
Anything permanent becomes an ``error`` result: an analysis reports, never raises.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from chimera.analysis.inputs import AnalysisInput
from chimera.analysis.prompts import PromptSpec
from chimera.analysis.schemas import ArgumentsV1, LogicBiasV1
from chimera.analysis.spans import SpanChecker
from chimera.errors import ChimeraError, LLMRetryable
from chimera.llm.client import LLMClient
from chimera.llm.types import CallMeta, LLMRequest, Message
from chimera.retry import compute_backoff
from chimera.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """The provider and model an analysis runs on."""

    provider: str
    model: str


def target_for(settings: Settings, kind: str) -> Target:
    """The provider and model of an analysis: its override, else the default."""
    chosen = settings.analysis_models.get(kind)  # type: ignore[call-overload]
    if chosen is not None:
        return Target(chosen.provider, chosen.model)
    return Target(settings.analysis_provider, settings.analysis_model)


@dataclass(frozen=True)
class PartResult:
    """One analysis's outcome, as stored and as a chord header returns it (JSON-safe)."""

    kind: str
    status: Literal["ok", "error"]
    prompt_id: str
    output: dict[str, Any] | None = None
    error_class: str | None = None
    error: str | None = None
    provider: str | None = None
    model: str | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    attempts: int = 1
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def failure(
        cls, spec: PromptSpec, exc: BaseException, *, target: Target, attempts: int
    ) -> PartResult:
        message = exc.message if isinstance(exc, ChimeraError) else str(exc)
        return cls(
            kind=spec.kind,
            status="error",
            prompt_id=spec.id,
            error_class=type(exc).__name__,
            error=message[:500],
            provider=target.provider,
            model=target.model,
            attempts=attempts,
        )


def build_request(
    spec: PromptSpec, source: AnalysisInput, target: Target, *, run_id: str, max_tokens: int
) -> LLMRequest:
    return LLMRequest(
        provider=target.provider,  # type: ignore[arg-type]
        model=target.model,
        system=spec.system(source.language),
        messages=(Message(role="user", content=f"The text to analyse:\n\n{source.text}"),),
        max_output_tokens=max_tokens,
        meta=CallMeta(
            task=spec.kind,
            owner_type="analysis_run",
            owner_id=run_id,
            step=spec.kind,
            prompt_ref=spec.id,
        ),
    )


def run_once(
    llm: LLMClient,
    spec: PromptSpec,
    source: AnalysisInput,
    target: Target,
    *,
    run_id: str,
    max_tokens: int,
    attempt: int = 1,
) -> PartResult:
    """One attempt; ``LLMRetryable`` propagates, every other failure is an error result."""
    request = build_request(spec, source, target, run_id=run_id, max_tokens=max_tokens)
    try:
        response, answer = llm.complete_structured(request, spec.schema, attempt=attempt)
    except LLMRetryable:
        raise
    except ChimeraError as exc:
        log.warning("analysis %s of %s failed: %s", spec.kind, run_id, exc)
        return PartResult.failure(spec, exc, target=target, attempts=attempt)
    output, notes = shape(spec, answer, source)
    return PartResult(
        kind=spec.kind,
        status="ok",
        prompt_id=spec.id,
        output=output,
        provider=response.provider,
        model=response.model,
        latency_ms=round(response.latency_ms, 1),
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        attempts=attempt,
        notes=notes,
    )


def run_with_retries(
    llm: LLMClient,
    spec: PromptSpec,
    source: AnalysisInput,
    target: Target,
    *,
    run_id: str,
    max_tokens: int,
    max_retries: int,
    deadline: float,
) -> PartResult:
    """``run_once`` with backoff (honouring retry-after) until done, out of tries or time."""
    attempt = 1
    while True:
        try:
            return run_once(
                llm, spec, source, target, run_id=run_id, max_tokens=max_tokens, attempt=attempt
            )
        except LLMRetryable as exc:
            delay = compute_backoff(
                attempt, base_s=0.5, cap_s=30.0, server_hint_s=exc.retry_after_s
            )
            if attempt > max_retries or time.monotonic() + delay >= deadline:
                return PartResult.failure(spec, exc, target=target, attempts=attempt)
            time.sleep(delay)
            attempt += 1


def shape(
    spec: PromptSpec, answer: BaseModel, source: AnalysisInput
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validated answer as stored, and notes on what the checks changed."""
    output = answer.model_dump(mode="json")
    notes: dict[str, Any] = {}
    if isinstance(answer, LogicBiasV1):
        checker = SpanChecker(source.text)
        for key in ("fallacies", "biases"):
            found = output[key]
            output[key] = [f for f in found if checker.contains(f["quote"])]
            if dropped := len(found) - len(output[key]):
                notes[f"{key}_dropped_unquoted"] = dropped
    elif isinstance(answer, ArgumentsV1):
        speakers = set(source.speakers)
        unknown = sorted({c["speaker"] for c in output["claims"]} - speakers)
        if unknown:
            notes["unknown_speakers"] = unknown
    return output, notes
