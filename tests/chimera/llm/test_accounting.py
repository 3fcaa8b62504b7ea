"""Accounting rows: batched off the call path, kept and retried while Postgres is away."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, func, select

from chimera.db import admin
from chimera.db.tables import LLMCall
from chimera.errors import ProviderOverloaded
from chimera.llm.accounting import Accountant
from chimera.llm.pricing import PriceTable
from chimera.llm.types import CallMeta, LLMRequest, Message, Usage
from chimera.models.participants import ModelCatalog

REQUEST = LLMRequest(
    provider="anthropic",
    model="claude-haiku-5-5",
    messages=(Message(role="user", content="hi"),),
    meta=CallMeta(
        task="summary",
        owner_type="analysis_run",
        owner_id="run-1",
        step="summary",
        prompt_ref="summary.v1",
    ),
)
CATALOG = ModelCatalog({"anthropic": frozenset({"claude-haiku-5-5"})})


def count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LLMCall)).scalar_one())


def test_rows_are_batched_and_flushed(db: Any) -> None:
    accountant = Accountant(db, PriceTable.load(), catalog=CATALOG, flush_interval_s=0.05)
    for i in range(120):
        accountant.record(
            REQUEST, attempt=1, latency_s=0.01, usage=Usage(input_tokens=i, output_tokens=1)
        )
    accountant.record(REQUEST, attempt=2, latency_s=0.5, error=ProviderOverloaded("529 overloaded"))
    assert accountant.flush()
    assert count(db) == 121
    with db.connect() as conn:
        failed = conn.execute(select(LLMCall).where(LLMCall.status == "error")).one()
    assert failed.error == "ProviderOverloaded: 529 overloaded"
    assert (failed.attempt, failed.prompt_ref, failed.owner_id) == (2, "summary.v1", "run-1")
    accountant.close()


def test_cost_uses_the_price_table(db: Any) -> None:
    accountant = Accountant(db, PriceTable.load(), catalog=CATALOG, flush_interval_s=0)
    cost = accountant.record(
        REQUEST,
        attempt=1,
        latency_s=0.1,
        usage=Usage(input_tokens=1_000_000, output_tokens=2_000_000),
    )
    assert float(cost) == 0.10 + 2 * 0.50
    with db.connect() as conn:
        assert float(conn.execute(select(LLMCall.cost_usd)).scalar_one()) == 1.10


def test_rows_wait_for_postgres_and_arrive_when_it_is_back(
    settings: Any, scratch_db_url: str
) -> None:
    engine = create_engine(scratch_db_url.replace("postgresql://", "postgresql+psycopg2://"))
    accountant = Accountant(engine, PriceTable.load(), catalog=CATALOG, flush_interval_s=0.02)
    for _ in range(5):
        accountant.record(
            REQUEST, attempt=1, latency_s=0.01, usage=Usage(input_tokens=1, output_tokens=1)
        )
    assert not accountant.flush(timeout_s=0.5)  # the database is not there yet
    admin.upgrade(settings, url=scratch_db_url)  # ... and now it is
    assert accountant.flush(timeout_s=15)
    assert count(engine) == 5
    accountant.close()
    engine.dispose()


def test_close_writes_what_is_pending(db: Any) -> None:
    accountant = Accountant(db, PriceTable.load(), catalog=CATALOG, flush_interval_s=5.0)
    accountant.record(
        REQUEST, attempt=1, latency_s=0.01, usage=Usage(input_tokens=1, output_tokens=1)
    )
    accountant.close()
    assert count(db) == 1
