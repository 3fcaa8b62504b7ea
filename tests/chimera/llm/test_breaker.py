"""The shared circuit breaker on the real Redis: two instances stand for two processes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chimera.llm.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from chimera.redis_client import make_redis


@pytest.fixture
def fleet(redis_ns: Any) -> tuple[CircuitBreaker, CircuitBreaker]:
    settings = redis_ns.model_copy(
        update={"breaker_failure_threshold": 3, "breaker_cooldown_s": 0.3, "llm_timeout_s": 1.0}
    )
    return CircuitBreaker(make_redis(settings), settings), CircuitBreaker(
        make_redis(settings), settings
    )


def test_consecutive_failures_open_it_for_everyone(
    fleet: tuple[CircuitBreaker, CircuitBreaker],
) -> None:
    a, b = fleet
    assert a.record("anthropic", "m", success=False) == CLOSED
    assert b.record("anthropic", "m", success=False) == CLOSED
    assert a.record("anthropic", "m", success=False) == OPEN
    permit = b.allow("anthropic", "m")
    assert not permit.allowed and 0 < permit.retry_after_s <= 0.3
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
    time.sleep(0.35)
    first, second = a.allow("openai", "o"), b.allow("openai", "o")
    assert first.allowed and first.probe
    assert not second.allowed
    assert b.state("openai", "o") == HALF_OPEN
    assert a.record("openai", "o", success=True) == CLOSED
    assert b.allow("openai", "o").allowed and not b.allow("openai", "o").probe


def test_a_failed_probe_opens_it_again(fleet: tuple[CircuitBreaker, CircuitBreaker]) -> None:
    a, b = fleet
    for _ in range(3):
        a.record("openai", "o", success=False)
    time.sleep(0.35)
    assert a.allow("openai", "o").probe
    assert a.record("openai", "o", success=False) == OPEN
    assert not b.allow("openai", "o").allowed


def test_a_released_probe_lets_the_next_caller_probe(
    fleet: tuple[CircuitBreaker, CircuitBreaker],
) -> None:
    a, b = fleet
    for _ in range(3):
        a.record("openai", "o", success=False)
    time.sleep(0.35)
    assert a.allow("openai", "o").probe
    a.release("openai", "o")
    assert b.allow("openai", "o").probe


def test_a_probe_that_never_reports_frees_its_slot(redis_ns: Any) -> None:
    settings = redis_ns.model_copy(
        update={"breaker_failure_threshold": 1, "breaker_cooldown_s": 0.1, "llm_timeout_s": 0.1}
    )
    breaker = CircuitBreaker(make_redis(settings), settings)
    breaker._probe_ttl_ms = 200  # the dead prober's lease
    breaker.record("anthropic", "m", success=False)
    time.sleep(0.15)
    assert breaker.allow("anthropic", "m").probe  # ... and this process dies
    assert not breaker.allow("anthropic", "m").allowed
    time.sleep(0.25)
    assert breaker.allow("anthropic", "m").probe
