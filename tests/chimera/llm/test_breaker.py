"""The shared circuit breaker on the real Redis: two instances stand for two processes."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.llm.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Permit
from chimera.redis_client import make_redis
from tests.helpers import wait_for


@pytest.fixture
def fleet(redis_ns: Any) -> tuple[CircuitBreaker, CircuitBreaker]:
    settings = redis_ns.model_copy(
        update={"breaker_failure_threshold": 3, "breaker_cooldown_s": 2.0, "llm_timeout_s": 1.0}
    )
    return CircuitBreaker(make_redis(settings), settings), CircuitBreaker(
        make_redis(settings), settings
    )


def first_permit(breaker: CircuitBreaker, provider: str, model: str) -> Permit:
    """Ask until the breaker lets a call through (the cooldown has passed); that permit."""
    granted: list[Permit] = []

    def ask() -> bool:
        permit = breaker.allow(provider, model)
        if permit.allowed:
            granted.append(permit)
        return permit.allowed

    wait_for(ask, what=f"the breaker of {provider}/{model} to let a call through")
    return granted[0]


def test_consecutive_failures_open_it_for_everyone(
    fleet: tuple[CircuitBreaker, CircuitBreaker],
) -> None:
    a, b = fleet
    assert a.record("anthropic", "m", success=False) == CLOSED
    assert b.record("anthropic", "m", success=False) == CLOSED
    assert a.record("anthropic", "m", success=False) == OPEN
    permit = b.allow("anthropic", "m")
    assert not permit.allowed and 0 < permit.retry_after_s <= 2.0
    assert a.allow("anthropic", "other-model").allowed  # per model


def test_a_success_resets_the_count(fleet: tuple[CircuitBreaker, CircuitBreaker]) -> None:
    a, b = fleet
    a.record("google", "g", success=False)
    a.record("google", "g", success=False)
    b.record("google", "g", success=True)
    assert a.record("google", "g", success=False) == CLOSED


def test_after_the_cooldown_exactly_one_probe_goes_through(
    fleet: tuple[CircuitBreaker, CircuitBreaker],
) -> None:
    a, b = fleet
    for _ in range(3):
        a.record("openai", "o", success=False)
    first, second = first_permit(a, "openai", "o"), b.allow("openai", "o")
    assert first.allowed and first.probe
    assert not second.allowed
    assert b.state("openai", "o") == HALF_OPEN
    assert a.record("openai", "o", success=True) == CLOSED
    assert b.allow("openai", "o").allowed and not b.allow("openai", "o").probe


def test_a_failed_probe_opens_it_again(fleet: tuple[CircuitBreaker, CircuitBreaker]) -> None:
    a, b = fleet
    for _ in range(3):
        a.record("openai", "o", success=False)
    assert first_permit(a, "openai", "o").probe
    assert a.record("openai", "o", success=False) == OPEN
    assert not b.allow("openai", "o").allowed


def test_a_released_probe_lets_the_next_caller_probe(
    fleet: tuple[CircuitBreaker, CircuitBreaker],
) -> None:
    a, b = fleet
    for _ in range(3):
        a.record("openai", "o", success=False)
    assert first_permit(a, "openai", "o").probe
    a.release("openai", "o")
    assert b.allow("openai", "o").probe


def test_a_probe_that_never_reports_frees_its_slot(redis_ns: Any) -> None:
    settings = redis_ns.model_copy(
        update={"breaker_failure_threshold": 1, "breaker_cooldown_s": 0.1, "llm_timeout_s": 0.1}
    )
    breaker = CircuitBreaker(make_redis(settings), settings)
    breaker._probe_ttl_ms = 2_000  # the dead prober's lease
    breaker.record("anthropic", "m", success=False)
    assert first_permit(breaker, "anthropic", "m").probe  # ... and this process dies
    assert not breaker.allow("anthropic", "m").allowed
    assert first_permit(breaker, "anthropic", "m").probe  # its lease lapsed
