"""Held-message records and worker liveness (chimera/holdings.py) on the real Redis."""

from __future__ import annotations

from typing import Any

from chimera.holdings import Holdings
from tests.helpers import wait_for


def _worker(client: Any, settings: Any, name: str) -> Holdings:
    holdings = Holdings(client, settings, name)
    holdings.alive()
    return holdings


def test_a_live_worker_is_never_dead_and_a_silent_one_is(redis_client: Any, redis_ns: Any) -> None:
    short = redis_ns.model_copy(update={"worker_liveness_ttl_s": 1.0})
    a = _worker(redis_client, short, "a")
    b = _worker(redis_client, redis_ns, "b")
    assert a.dead_workers() == [] and b.dead_workers() == []
    # a stops beating: its key expires on Redis's clock, and b sees it dead.
    wait_for(lambda: b.dead_workers() == ["a"], what="a's liveness to expire")
    assert a.dead_workers() == []  # never itself


def test_a_dead_workers_tag_is_claimed_once(redis_client: Any, redis_ns: Any) -> None:
    dead = _worker(redis_client, redis_ns, "dead")
    dead.took("t1")
    dead.took("t2")
    dead.done("t2")  # acknowledged: nothing to put back
    dead.leaving()
    s1 = _worker(redis_client, redis_ns, "s1")
    s2 = _worker(redis_client, redis_ns, "s2")
    assert s1.held("dead") == {"t1"}
    assert s1.claim("dead", "t1") is True
    assert s2.claim("dead", "t1") is False  # s1's claim stands
    assert s2.held("dead") == {"t1"}  # kept for a later sweep, should s1 die now
    s1.restored("t1", "dead")
    assert s2.held("dead") == set()
    assert s2.forget("dead") is True
    assert s2.dead_workers() == []


def test_a_tag_taken_by_a_live_worker_is_not_claimed(redis_client: Any, redis_ns: Any) -> None:
    """A message put back (by the dead worker's own close, or the broker's visibility
    sweep) and taken again keeps its tag: the dead worker's record of it is stale."""
    dead = _worker(redis_client, redis_ns, "dead")
    dead.took("t1")
    dead.leaving()
    live = _worker(redis_client, redis_ns, "live")
    live.took("t1")
    sweeper = _worker(redis_client, redis_ns, "sweeper")
    assert sweeper.claim("dead", "t1") is False
    assert sweeper.held("dead") == set()  # dropped: it is live's now
    assert sweeper.held("live") == {"t1"}
    # The dead worker's late "done" (it was only cut off) does not clear live's record.
    dead.done("t1")
    assert redis_client.get(redis_ns.redis_key("holder", "t1")) == "live"


def test_a_dead_worker_with_unfinished_claims_is_not_forgotten(
    redis_client: Any, redis_ns: Any
) -> None:
    dead = _worker(redis_client, redis_ns, "dead")
    dead.took("t1")
    dead.leaving()
    sweeper = _worker(redis_client, redis_ns, "sweeper")
    assert sweeper.claim("dead", "t1")
    assert sweeper.forget("dead") is False  # t1 not yet put back
    assert sweeper.dead_workers() == ["dead"]
