"""Fixtures: one simulator and one set of real SDK clients for the session, reset per test.

Building an SDK client costs 30-90 ms (TLS context, httpx pool), so the clients and the server
they point at live for the session; ``sim`` hands each test a simulator with an empty call log,
no faults, fresh rate-limit windows and its start-up configuration.  Tests that need their own
configuration or stop a server start one with ``make_sim``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai

from llmsim import SimConfig, Simulator
from tests.llmsim.clients import anthropic_for, gemini_for, openai_for


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Simulator]:
    with Simulator(SimConfig(timeout_fault_delay_s=5.0)) as simulator:
        yield simulator


@pytest.fixture
def sim(shared_sim: Simulator) -> Iterator[Simulator]:
    """The session's simulator, as good as new: no latency, faults, limits or logged calls."""
    shared_sim.reset(config=True)
    yield shared_sim
    shared_sim.reset(config=True)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    """Factory for simulators with their own config; each is stopped after the test."""
    started: list[Simulator] = []

    def make(**config: Any) -> Simulator:
        simulator = Simulator(SimConfig(**config)).start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture(scope="session")
def claude(shared_sim: Simulator) -> Iterator[anthropic.Anthropic]:
    client = anthropic_for(shared_sim)
    yield client
    client.close()


@pytest.fixture(scope="session")
def gemini(shared_sim: Simulator) -> Iterator[genai.Client]:
    client = gemini_for(shared_sim)
    yield client
    client.close()


@pytest.fixture(scope="session")
def gpt(shared_sim: Simulator) -> Iterator[openai.OpenAI]:
    client = openai_for(shared_sim)
    yield client
    client.close()
