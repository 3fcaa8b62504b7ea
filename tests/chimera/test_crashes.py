"""Counting runs that died with their worker, in the real Redis."""

from __future__ import annotations

from typing import Any

from chimera import defaults as d
from chimera.crashes import CrashCounter
from chimera.redis_client import make_redis


def test_runs_that_never_ended_are_counted_and_an_ended_run_clears_them(redis_ns: Any) -> None:
    counter = CrashCounter(make_redis(redis_ns), redis_ns)
    assert counter.begin("t-1") == 0  # first run: killed, never ends
    assert counter.begin("t-1") == 1  # redelivered: one run died before it
    assert counter.begin("t-2") == 0  # other task ids are apart
    counter.end("t-1")  # this one ended (done, failed or retried): history cleared
    assert counter.begin("t-1") == 0


def test_the_cap_is_reached_after_max_crashes_deaths(redis_ns: Any) -> None:
    counter = CrashCounter(make_redis(redis_ns), redis_ns)
    crashes = [counter.begin("poison") for _ in range(d.TASK_MAX_CRASHES + 1)]
    assert [counter.exhausted(c) for c in crashes] == [False] * d.TASK_MAX_CRASHES + [True]


def test_a_counter_key_expires(redis_ns: Any, redis_client: Any) -> None:
    counter = CrashCounter(make_redis(redis_ns), redis_ns)
    counter.begin("t-3")
    ttl = redis_client.ttl(redis_ns.redis_key(d.KEY_TASK_STARTS, "t-3"))
    assert 0 < ttl <= redis_ns.visibility_timeout_s * (d.TASK_MAX_CRASHES + 2)


def test_a_run_put_back_for_later_takes_back_only_its_own_count(
    redis_ns: Any, redis_client: Any
) -> None:
    """Copies of one task share its id: one that bounces off a busy lease (a retry) must
    not wipe the deaths the others left behind."""
    counter = CrashCounter(make_redis(redis_ns), redis_ns)
    key = redis_ns.redis_key(d.KEY_TASK_STARTS, "t-4")
    counter.begin("t-4")  # died
    assert counter.begin("t-4") == 1  # a copy: bounces, retried later
    counter.put_back("t-4")
    assert counter.begin("t-4") == 1  # the death is still counted
    counter.put_back("t-4")
    counter.put_back("t-4")
    assert not redis_client.exists(key)  # back to nothing: no key left behind
