"""The fleet-wide limiter on the real Redis (short windows keep the tests fast)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from chimera.errors import LLMBadRequest
from chimera.llm.limiter import RateLimiter
from chimera.redis_client import make_redis
from chimera.settings_values import ModelLimits
from tests.conftest import PROJECT_ROOT
from tests.helpers import wait_for


@pytest.fixture
def limited(redis_ns: Any) -> Any:
    """Settings with a 2 s window and small limits for openai/m."""
    return redis_ns.model_copy(
        update={
            "llm_limit_window_s": 2.0,
            "llm_window_margin_s": 0.0,
            "llm_limits": {"openai/m": ModelLimits(rpm=5, itpm=1_000, otpm=500)},
        }
    )


def test_requests_beyond_the_limit_wait_for_the_window(limited: Any, redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, limited)
    admitted = [limiter.try_acquire("openai", "m", 10, 10) for _ in range(5)]
    assert all(a.reservation for a in admitted)
    sixth = limiter.try_acquire("openai", "m", 10, 10)
    assert sixth.reservation is None
    assert 1.5 < sixth.wait_s <= 2.0
    time.sleep(sixth.wait_s + 0.05)
    assert limiter.try_acquire("openai", "m", 10, 10).reservation is not None


def test_token_budgets_count_reservations_and_reconcile_to_usage(
    limited: Any, redis_client: Any
) -> None:
    limiter = RateLimiter(redis_client, limited)
    first = limiter.try_acquire("openai", "m", 600, 100).reservation
    assert first is not None
    assert limiter.try_acquire("openai", "m", 600, 100).reservation is None  # 1,200 > 1,000
    limiter.reconcile(first, 300, 50)  # the real usage was smaller
    assert limiter.try_acquire("openai", "m", 600, 100).reservation is not None  # 900 <= 1,000


def test_output_budget_counts_too(limited: Any, redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, limited)
    assert limiter.try_acquire("openai", "m", 1, 400).reservation is not None
    blocked = limiter.try_acquire("openai", "m", 1, 400)
    assert blocked.reservation is None and blocked.wait_s > 1


def test_max_tokens_above_the_whole_budget_is_clamped_not_refused(
    limited: Any, redis_client: Any
) -> None:
    admitted = RateLimiter(redis_client, limited).try_acquire("openai", "m", 1, 10_000)
    assert admitted.reservation is not None and admitted.reservation.output_tokens == 500


def test_a_request_larger_than_the_input_budget_is_refused(limited: Any, redis_client: Any) -> None:
    with pytest.raises(LLMBadRequest, match="can never be sent"):
        RateLimiter(redis_client, limited).try_acquire("openai", "m", 5_000, 1)


def test_a_penalty_stops_everyone_until_the_hint(limited: Any, redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, limited)
    limiter.penalize("openai", "m", 3.0)
    other_process_view = RateLimiter(make_redis(limited), limited)
    blocked = other_process_view.try_acquire("openai", "m", 1, 1)
    assert blocked.reservation is None and 0 < blocked.wait_s <= 3.0
    wait_for(
        lambda: other_process_view.try_acquire("openai", "m", 1, 1).reservation,
        what="the penalty to end",
    )


def admitted(limiter: RateLimiter, *models: str) -> list[bool]:
    return [limiter.try_acquire("openai", m, 1, 1).reservation is not None for m in models]


def test_the_models_of_a_provider_share_its_window(redis_ns: Any, redis_client: Any) -> None:
    settings = redis_ns.model_copy(
        update={"rate_limit_requests_per_minute": 3, "llm_limit_window_s": 2.0}
    )
    limiter = RateLimiter(redis_client, settings)
    # However many names the calls use, the provider's 3 a window hold.
    assert admitted(limiter, "m", "alias-1", "alias-2", "m", "alias-3") == [1, 1, 1, 0, 0]


def test_under_the_model_scope_each_model_has_its_own_window(
    redis_ns: Any, redis_client: Any
) -> None:
    settings = redis_ns.model_copy(
        update={
            "rate_limit_requests_per_minute": 2,
            "llm_limit_window_s": 2.0,
            "llm_limit_scope": "model",
        }
    )
    limiter = RateLimiter(redis_client, settings)
    assert admitted(limiter, "m", "m", "m", "other", "other", "other") == [1, 1, 0, 1, 1, 0]


def test_a_models_own_entry_adds_its_window_to_the_providers(
    redis_ns: Any, redis_client: Any
) -> None:
    settings = redis_ns.model_copy(
        update={
            "llm_limit_window_s": 2.0,
            "llm_limits": {"openai": ModelLimits(rpm=4), "openai/m": ModelLimits(rpm=2)},
        }
    )
    limiter = RateLimiter(redis_client, settings)
    # m stops at its own 2; the others go on to the provider's 4, m's calls counted in it.
    assert admitted(limiter, "m", "m", "m", "other", "other", "other") == [1, 1, 0, 1, 1, 0]
    # A refused call takes nothing from either window.
    assert admitted(limiter, "m") == [False]


@pytest.mark.parametrize(("scope", "tag"), [("provider", "{openai}"), ("model", "{openai/m}")])
def test_every_key_of_a_call_shares_one_cluster_slot(
    limited: Any, redis_client: Any, scope: str, tag: str
) -> None:
    limiter = RateLimiter(redis_client, limited.model_copy(update={"llm_limit_scope": scope}))
    keys = limiter.request("openai", "m", 1, 1).keys
    assert len(keys) == (7 if scope == "provider" else 4)  # two windows, or one; the penalty
    assert {k[k.index("{") : k.index("}") + 1] for k in keys} == {tag}


def test_a_penalty_holds_its_model_not_the_whole_provider(limited: Any, redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, limited)
    limiter.penalize("openai", "m", 5)
    assert admitted(limiter, "m", "other") == [False, True]


def test_the_provider_default_applies_to_unlisted_models(redis_ns: Any, redis_client: Any) -> None:
    settings = redis_ns.model_copy(
        update={"rate_limit_requests_per_minute": 2, "llm_limit_window_s": 2.0}
    )
    limiter = RateLimiter(redis_client, settings)
    assert [bool(limiter.try_acquire("google", "g", 1, 1).reservation) for _ in range(3)] == [
        True,
        True,
        False,
    ]


HAMMER = """
import json, sys, time
from chimera.llm.limiter import RateLimiter
from chimera.redis_client import make_redis
from chimera.settings import get_settings
settings = get_settings()
limiter = RateLimiter(make_redis(settings), settings)
stamps = []
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    a = limiter.try_acquire("openai", "m", 10, 10)
    if a.reservation:
        stamps.append(time.time())
    else:
        time.sleep(min(a.wait_s, 0.05))
print(json.dumps(stamps))
"""


def test_two_processes_never_exceed_the_limit_together(limited: Any) -> None:
    import json
    import os

    from chimera.settings import to_env

    # As in production, the limiter's window is a little longer than the one we
    # count in: the stamps are taken after admission, by busy processes.
    settings = limited.model_copy(
        update={"llm_limits": {"openai/m": ModelLimits(rpm=20)}, "llm_window_margin_s": 0.25}
    )
    env = os.environ | to_env(settings)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, "5"],
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    per_process = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(per_process), "both processes got admissions"
    stamps = sorted(t for admitted in per_process for t in admitted)
    window = settings.llm_limit_window_s
    # Every 2 s span holds at most 20 admissions, and the limit was actually reached.
    worst = max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)
    assert worst <= 20
    assert len(stamps) >= 35  # ~5 s of two hungry processes: over two full windows


def test_a_cancelled_reservation_frees_its_slot_and_tokens(limited: Any, redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, limited)
    held = [limiter.try_acquire("openai", "m", 100, 10).reservation for _ in range(5)]
    assert limiter.try_acquire("openai", "m", 100, 10).reservation is None
    assert held[0] is not None
    limiter.cancel(held[0])
    assert limiter.try_acquire("openai", "m", 100, 10).reservation is not None


@pytest.mark.parametrize(("input_tokens", "output_tokens"), [(0, 0), (12, 0), (0, 7)])
def test_a_call_that_used_no_tokens_expires_from_the_window_like_any_other(
    limited: Any, redis_client: Any, input_tokens: int, output_tokens: int
) -> None:
    """Lua's -0 is sent to Redis as "-0", which HINCRBY refuses: subtracting a zero count
    must not break the window for everyone once the entry expires (or is cancelled)."""
    limiter = RateLimiter(redis_client, limited)
    held = limiter.try_acquire("openai", "m", 10, 10).reservation
    assert held is not None
    limiter.reconcile(held, input_tokens, output_tokens)
    cancelled = limiter.try_acquire("openai", "m", 10, 10).reservation
    assert cancelled is not None
    limiter.reconcile(cancelled, input_tokens, output_tokens)
    limiter.cancel(cancelled)
    time.sleep(limited.llm_limit_window_s + 0.1)
    admitted = [limiter.try_acquire("openai", "m", 10, 10) for _ in range(5)]
    assert all(a.reservation is not None for a in admitted)
