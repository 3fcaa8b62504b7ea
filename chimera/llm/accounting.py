"""Accounting: one `llm_calls` row per attempt, plus the Prometheus metrics."""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from chimera import metrics
from chimera.db.tables import LLMCall
from chimera.llm.pricing import PriceTable
from chimera.llm.types import LLMRequest, Usage

log = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 2_000


class Accountant:
    def __init__(self, engine: Engine, prices: PriceTable) -> None:
        self._engine = engine
        self.prices = prices

    def record(
        self,
        request: LLMRequest,
        *,
        attempt: int,
        latency_s: float,
        usage: Usage | None = None,
        error: BaseException | None = None,
    ) -> Decimal:
        """Write the attempt's row and metrics; return its cost.

        A database failure is logged and counted, not raised: the call has
        already happened, and failing now would only make a caller pay again.
        """
        provider, model = request.provider, request.model
        status = "ok" if error is None else "error"
        error_class = type(error).__name__ if error is not None else ""
        in_tok = usage.input_tokens if usage else 0
        out_tok = usage.output_tokens if usage else 0
        cost = self.prices.cost(provider, model, in_tok, out_tok)

        metrics.LLM_CALLS.labels(provider, model, status, error_class).inc()
        metrics.LLM_LATENCY.labels(provider, model).observe(latency_s)
        if usage:
            metrics.LLM_TOKENS.labels(provider, model, "input").inc(in_tok)
            metrics.LLM_TOKENS.labels(provider, model, "output").inc(out_tok)
            metrics.LLM_COST.labels(provider, model).inc(float(cost))

        meta = request.meta
        row = {
            "provider": provider,
            "model": model,
            "prompt_ref": meta.prompt_ref,
            "task": meta.task,
            "owner_type": meta.owner_type,
            "owner_id": meta.owner_id,
            "step": meta.step,
            "status": status,
            "error": f"{error_class}: {error}"[:_MAX_ERROR_CHARS] if error else None,
            "input_tokens": in_tok,
            "output_tokens": out_tok,
            "latency_ms": latency_s * 1000,
            "cost_usd": cost,
            "attempt": attempt,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(LLMCall).values(**row))
        except SQLAlchemyError as exc:
            metrics.ACCOUNTING_FAILURES.inc()
            log.error(
                "could not record an llm_calls row for %s/%s (%s %s): %s",
                provider,
                model,
                meta.owner_type,
                meta.owner_id,
                exc,
            )
        return cost
