"""Accounting: one `llm_calls` row per attempt, plus the Prometheus metrics.

Rows are written off the call path by a writer thread that inserts them in
batches (every ``flush_interval_s``, or sooner when a batch fills): a
synchronous insert and commit costs ~1-2 ms, more than everything else the
layer adds to a call.  ``flush()`` blocks until every recorded row is in
Postgres; ``close()`` flushes and stops the writer (worker shutdown calls it).
A failed batch is kept and retried with backoff (each row carries its own
``call_id``, so a batch that was written but reported failed inserts nothing
twice); only past ``max_pending`` rows are dropped, and counted.  What a SIGKILL
can lose is the last interval's rows.  ``flush_interval_s=0`` writes each row before
``record`` returns.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert

from chimera import metrics, redaction
from chimera.batching import Batcher
from chimera.db.errors import database_errors
from chimera.db.tables import LLMCall
from chimera.errors import ChimeraError, DatabaseUnavailable
from chimera.llm.pricing import PriceTable
from chimera.llm.types import LLMRequest, Usage
from chimera.models.participants import ModelCatalog

log = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 2_000


def _error_text(error: BaseException) -> str:
    """What the row keeps of an error: no secret (SDK errors may echo the key)."""
    return redaction.redact(f"{type(error).__name__}: {error}")[:_MAX_ERROR_CHARS]


class Accountant:
    def __init__(
        self,
        engine: Engine,
        prices: PriceTable,
        *,
        catalog: ModelCatalog,
        flush_interval_s: float = 0.05,
        max_batch: int = 500,
        max_pending: int = 50_000,
    ) -> None:
        self._engine = engine
        self.prices = prices
        self._catalog = catalog
        self._interval = flush_interval_s
        self._batcher: Batcher[dict[str, Any]] = Batcher(
            "chimera-llm-accounting",
            self._insert,
            interval_s=flush_interval_s,
            max_batch=max_batch,
            max_pending=max_pending,
            # Only an outage is worth waiting for: a batch Postgres refuses (DataRejected)
            # is dropped and counted, not retried for ever ahead of every later row.
            retry_on=(DatabaseUnavailable,),
            on_drop=metrics.ACCOUNTING_FAILURES.inc,
        )

    # --- recording ----------------------------------------------------------------------

    def record(
        self,
        request: LLMRequest,
        *,
        attempt: int,
        latency_s: float,
        usage: Usage | None = None,
        error: BaseException | None = None,
    ) -> Decimal:
        """Count the attempt in the metrics, queue its row, and return its cost."""
        provider, model = request.route, request.model  # openai:<endpoint> for one
        status = "ok" if error is None else "error"
        error_class = type(error).__name__ if error is not None else ""
        in_tok = usage.input_tokens if usage else 0
        out_tok = usage.output_tokens if usage else 0
        cost = self.prices.cost(provider, model, in_tok, out_tok)

        labels = self._catalog.labels(provider, model)
        metrics.LLM_CALLS.labels(*labels, status, error_class).inc()
        metrics.LLM_LATENCY.labels(*labels).observe(latency_s)
        if usage:
            metrics.LLM_TOKENS.labels(*labels, "input").inc(in_tok)
            metrics.LLM_TOKENS.labels(*labels, "output").inc(out_tok)
            metrics.LLM_COST.labels(*labels).inc(float(cost))

        meta = request.meta
        row = {
            "call_id": uuid.uuid4().hex,
            "provider": provider,
            "model": model,
            "prompt_ref": meta.prompt_ref,
            "task": meta.task,
            "owner_type": meta.owner_type,
            "owner_id": meta.owner_id,
            "step": meta.step,
            "status": status,
            "error": _error_text(error) if error is not None else None,
            "input_tokens": in_tok,
            "output_tokens": out_tok,
            "latency_ms": latency_s * 1000,
            "cost_usd": cost,
            "attempt": attempt,
        }
        if self._interval <= 0:
            self._write_now([row])
        else:
            self._batcher.submit(row)
        return cost

    # --- writing --------------------------------------------------------------------------

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        # A retried batch may have been written already (its COMMIT's reply was lost).
        with database_errors("cannot write llm_calls"), self._engine.begin() as conn:
            conn.execute(insert(LLMCall).on_conflict_do_nothing(index_elements=["call_id"]), rows)

    def _write_now(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._insert(rows)
        except ChimeraError as exc:
            # The call has happened; failing the caller now would only make it pay again.
            metrics.ACCOUNTING_FAILURES.inc(len(rows))
            log.error("could not record %d llm_calls rows: %s", len(rows), exc)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until every recorded row is written; False if ``timeout_s`` passed first."""
        return self._batcher.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is pending and stop the writer."""
        self._batcher.close(timeout_s)
