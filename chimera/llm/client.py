"""The one way Chimera calls an LLM.

``LLMClient.complete`` = breaker permit -> fleet-wide limiter (waits up to a
bound) -> provider call -> validation -> limiter reconcile, breaker report,
accounting.  It makes exactly one provider call per invocation and never
sleeps on a provider's ``retry-after``: a retryable failure is raised with its
hint, so a Celery task can re-queue itself instead of holding a worker slot.
``complete_with_retries`` is the loop for synchronous callers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError

from chimera import metrics, tracing
from chimera.errors import (
    ChimeraError,
    CircuitOpen,
    LimiterRefused,
    LLMError,
    LLMRetryable,
    ProviderNotConfigured,
    RateLimited,
    StructuredOutputInvalid,
)
from chimera.llm.accounting import Accountant
from chimera.llm.base import Provider
from chimera.llm.breaker import CircuitBreaker, Permit
from chimera.llm.calls import SpendGuard, estimate_input_tokens, request_attributes, storable
from chimera.llm.limiter import Admission, RateLimiter, Reservation
from chimera.llm.types import LLMRequest, LLMResponse, Message
from chimera.models.participants import ModelCatalog
from chimera.redis_client import run_scripts
from chimera.redis_errors import redis_errors
from chimera.retry import compute_backoff

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class LLMClient:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        redis_client: redis.Redis,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        accountant: Accountant,
        catalog: ModelCatalog,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        spend: SpendGuard | None = None,
    ) -> None:
        self._providers = dict(providers)
        #: The budget guard (jobs' budgets), asked before the breaker and the limiter.
        self.spend = spend
        self._redis = redis_client
        self.limiter = limiter
        self.breaker = breaker
        self.accountant = accountant
        self.catalog = catalog
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep

    @property
    def providers(self) -> list[str]:
        return sorted(self._providers)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Finish the after-call work: `llm_calls` rows written, limiter reconciled."""
        return self.limiter.flush(timeout_s) and self.accountant.flush(timeout_s)

    def close(self) -> None:
        self.limiter.close()
        self.accountant.close()
        for provider in self._providers.values():
            provider.close()

    # --- one attempt -------------------------------------------------------------------

    def complete(self, request: LLMRequest, *, attempt: int = 1) -> LLMResponse:
        """One governed, accounted provider call (or a ``ChimeraError`` saying why not),
        traced as a ``chat {model}`` client span."""
        with tracing.span(f"chat {request.model}", SpanKind.CLIENT) as span:
            if span.is_recording():
                span.set_attributes(request_attributes(request, attempt))
            try:
                response = self._complete(request, attempt)
            except LLMRetryable as exc:
                if span.is_recording() and exc.retry_after_s is not None:
                    span.set_attribute("chimera.llm.retry_after_s", exc.retry_after_s)
                raise
            if span.is_recording():
                span.set_attributes(
                    {
                        "gen_ai.response.model": response.model,
                        "gen_ai.usage.input_tokens": response.usage.input_tokens,
                        "gen_ai.usage.output_tokens": response.usage.output_tokens,
                        "gen_ai.response.finish_reasons": [response.stop_reason or ""],
                        "chimera.llm.cost_usd": response.cost_usd,
                    }
                )
            return response

    def _complete(self, request: LLMRequest, attempt: int) -> LLMResponse:
        provider = self._provider(request)
        p, m = request.route, request.model
        hold = self.spend.reserve(request, estimate_input_tokens(request)) if self.spend else None
        try:
            permit, reservation = self._govern(request)
        except BaseException:
            self._settle(hold, request, 0, 0)
            raise

        started = self._clock()
        try:
            result = provider.complete(request)
        except LLMError as exc:
            latency = self._clock() - started
            self._after_failure(request, reservation, exc)
            self.accountant.record(request, attempt=attempt, latency_s=latency, error=exc)
            self._settle(hold, request, 0, 0)  # what accounting counts of a failed call
            raise
        except BaseException:
            self._settle(hold, request, 0, 0)
            raise
        latency = self._clock() - started
        self._settle(hold, request, result.usage.input_tokens, result.usage.output_tokens)
        self.limiter.reconcile_soon(
            reservation, result.usage.input_tokens, result.usage.output_tokens
        )
        if not permit.clean:  # closed with nothing counted: a success changes nothing
            self.breaker.record(p, m, success=True)
            metrics.BREAKER_STATE.labels(*self.catalog.labels(p, m)).set(0)
        cost = self.accountant.record(
            request, attempt=attempt, latency_s=latency, usage=result.usage
        )
        return LLMResponse(
            provider=request.provider,
            model=result.model,
            text=storable(result.text),
            data=storable(result.data),
            usage=result.usage,
            stop_reason=result.stop_reason,
            latency_ms=latency * 1000,
            cost_usd=float(cost),
            attempt=attempt,
        )

    def _settle(
        self, hold: object | None, request: LLMRequest, input_tokens: int, output_tokens: int
    ) -> None:
        """Best effort: a settle lost to an outage leaves the reservation counted."""
        if hold is None or self.spend is None:
            return
        try:
            self.spend.settle(hold, input_tokens, output_tokens, request)
        except ChimeraError as exc:
            log.error("%s: the budget reservation was not settled: %s", request.key, exc)

    def _provider(self, request: LLMRequest) -> Provider:
        try:
            return self._providers[request.route]
        except KeyError:
            raise ProviderNotConfigured(
                f"provider {request.route!r} is not configured: set its API key or base "
                f"URL (configured: {', '.join(self.providers) or 'none'})",
                provider=request.provider,
                model=request.model,
            ) from None

    def _govern(self, request: LLMRequest) -> tuple[Permit, Reservation]:
        """The breaker's permit and the limiter's reservation, asked in one round trip."""
        p, m = request.route, request.model
        ask = self.limiter.request(p, m, estimate_input_tokens(request), request.max_output_tokens)
        with redis_errors("LLM governance unavailable"):
            raw_permit, raw_admission = run_scripts(
                self._redis, [self.breaker.allow_call(p, m), self.limiter.acquire_call(ask)]
            )
        permit = self.breaker.permit(raw_permit)
        try:
            admission = self.limiter.admission(ask, raw_admission)
        except LLMError:
            if permit.probe:
                self.breaker.release(p, m)
            raise
        if not permit.allowed:
            if admission.reservation is not None:
                self.limiter.cancel(admission.reservation)
            metrics.BREAKER_STATE.labels(*self.catalog.labels(p, m)).set(1)
            raise CircuitOpen(
                f"{request.key} is failing; circuit open",
                retry_after_s=permit.retry_after_s,
                provider=p,
                model=m,
            )
        try:
            return permit, admission.reservation or self._admit(request, admission.wait_s)
        except LLMError:
            if permit.probe:
                self.breaker.release(p, m)
            raise

    def _admit(self, request: LLMRequest, first_wait_s: float) -> Reservation:
        """Wait for capacity up to ``max_wait_s``; else ``LimiterRefused`` (a wait, not an
        attempt: no provider call was made)."""
        p, m = request.route, request.model
        est_in = estimate_input_tokens(request)
        waited = 0.0
        admission = Admission(None, first_wait_s)
        while True:
            if admission.reservation is not None:
                if waited:
                    metrics.RATE_LIMIT_WAIT.labels(*self.catalog.labels(p, m)).observe(waited)
                return admission.reservation
            if waited + admission.wait_s > self._max_wait_s:
                metrics.RATE_LIMITED.labels(*self.catalog.labels(p, m)).inc()
                raise LimiterRefused(
                    f"{request.key} is at its rate limit; try again in {admission.wait_s:.1f}s",
                    retry_after_s=admission.wait_s,
                    provider=p,
                    model=m,
                )
            self._sleep(admission.wait_s)
            waited += admission.wait_s
            admission = self.limiter.try_acquire(p, m, est_in, request.max_output_tokens)

    def _after_failure(self, request: LLMRequest, reservation: Reservation, exc: LLMError) -> None:
        p, m = request.route, request.model
        # The request reached (or may have reached) the provider: it keeps its slot
        # in the window; output tokens were not produced.
        self.limiter.reconcile(reservation, reservation.input_tokens, 0)
        if isinstance(exc, LLMRetryable):
            state = self.breaker.record(p, m, success=False)
            labels = self.catalog.labels(p, m)
            metrics.BREAKER_STATE.labels(*labels).set(1 if state == "open" else 0)
            if isinstance(exc, RateLimited) and exc.retry_after_s:
                self.limiter.penalize(p, m, exc.retry_after_s)
        else:
            # A permanent error is an answer: the provider is up.
            self.breaker.record(p, m, success=True)

    # --- structured output ---------------------------------------------------------------

    def complete_structured(
        self, request: LLMRequest, schema: type[T], *, attempt: int = 1
    ) -> tuple[LLMResponse, T]:
        """A completion validated against ``schema``; one repair attempt, then
        ``StructuredOutputInvalid``."""
        request = request.model_copy(
            update={"json_schema": schema.model_json_schema(), "schema_name": schema.__name__}
        )
        response = self.complete(request, attempt=attempt)
        try:
            return response, _validate(schema, response)
        except ValidationError as exc:
            problems = _describe(exc)
        log.info(
            "%s answer failed %s (%s); asking once for a repair",
            request.key,
            schema.__name__,
            problems,
        )
        repair = request.model_copy(
            update={
                "messages": (
                    *request.messages,
                    Message(role="assistant", content=response.text),
                    Message(
                        role="user",
                        content=(
                            f"That answer does not match the required structure: {problems}. "
                            "Answer again with the corrected JSON only."
                        ),
                    ),
                ),
                "meta": request.meta.model_copy(
                    update={"prompt_ref": f"{request.meta.prompt_ref or 'adhoc'}#repair"}
                ),
            }
        )
        repaired = self.complete(repair, attempt=attempt)
        try:
            return repaired, _validate(schema, repaired)
        except ValidationError as exc:
            raise StructuredOutputInvalid(
                f"{request.key} answered invalid {schema.__name__} twice: {_describe(exc)}",
                provider=request.provider,
                model=request.model,
            ) from None

    # --- synchronous retries --------------------------------------------------------------

    def complete_with_retries(
        self,
        request: LLMRequest,
        *,
        max_attempts: int = 3,
        base_s: float = 1.0,
        cap_s: float = 30.0,
    ) -> LLMResponse:
        """``complete`` with backoff honouring the server's hint, for callers outside Celery."""
        for attempt in range(1, max_attempts + 1):
            try:
                return self.complete(request, attempt=attempt)
            except LLMRetryable as exc:
                if attempt == max_attempts:
                    raise
                delay = compute_backoff(
                    attempt, base_s=base_s, cap_s=cap_s, server_hint_s=exc.retry_after_s
                )
                log.info(
                    "%s attempt %d failed (%s); retrying in %.2fs",
                    request.key,
                    attempt,
                    type(exc).__name__,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _validate(schema: type[T], response: LLMResponse) -> T:
    payload: Any = response.data if response.data is not None else response.text
    if isinstance(payload, str):
        return schema.model_validate_json(payload)
    return schema.model_validate(payload)


def _describe(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:10]
    ]
    return "; ".join(parts)
