"""Fixtures for the LLM layer: the simulator over HTTP, and clients built like production."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from chimera.db.tables import LLMCall
from chimera.llm.client import LLMClient
from chimera.llm.registry import build_client
from chimera.redis_client import make_redis
from llmsim import SimConfig, Simulator

MODELS = {
    "anthropic": "claude-sonnet-5-5",
    "google": "gemini-3.5-flash",
    "openai": "llama-3.3-70b",
}


@pytest.fixture(scope="session")
def llm_sim() -> Iterator[Simulator]:
    with Simulator(SimConfig(seed=7, timeout_fault_delay_s=3.0)) as simulator:
        yield simulator


@pytest.fixture
def sim(llm_sim: Simulator) -> Iterator[Simulator]:
    llm_sim.reset(config=True)
    yield llm_sim
    llm_sim.reset(config=True)


@pytest.fixture
def llm_settings(redis_ns: Any, db: Any, sim: Simulator) -> Any:
    """Settings pointing all three providers at the simulator, with this test's Redis keys."""
    return redis_ns.model_copy(
        update={
            "anthropic_base_url": sim.base_url,
            "google_gemini_base_url": sim.base_url,
            "openai_base_url": f"{sim.base_url}/v1",
            "llm_timeout_s": 2.0,
            "llm_max_wait_s": 2.0,
        }
    )


@pytest.fixture
def make_llm(llm_settings: Any, db: Any) -> Iterator[Callable[..., LLMClient]]:
    """Factory: an LLMClient (its own Redis connection: a 'process' of the fleet)."""
    clients: list[LLMClient] = []

    def make(**overrides: Any) -> LLMClient:
        settings = llm_settings.model_copy(update=overrides)
        client = build_client(settings, redis_client=make_redis(settings), engine=db)
        clients.append(client)
        return client

    make.clients = clients  # type: ignore[attr-defined]
    yield make
    for client in clients:
        client.close()


def _clients(make: Callable[..., LLMClient]) -> list[LLMClient]:
    return list(getattr(make, "clients", []))


@pytest.fixture
def llm(make_llm: Callable[..., LLMClient]) -> LLMClient:
    return make_llm()


@pytest.fixture
def llm_rows(db: Any, make_llm: Callable[..., LLMClient]) -> Callable[[], list[Any]]:
    """The test's `llm_calls` rows (after flushing every client's pending rows)."""

    def rows() -> list[Any]:
        for client in _clients(make_llm):
            client.flush()
        with db.connect() as conn:
            return list(conn.execute(select(LLMCall).order_by(LLMCall.id)))

    return rows
