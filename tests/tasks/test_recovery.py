"""A worker's sweep (tasks/recovery.py) puts a dead worker's unacknowledged message back
in its queue through kombu, on the real Redis broker, once and only once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection

from chimera.holdings import Holdings
from chimera.redis_client import make_redis
from tasks.recovery import Keeper


@pytest.fixture
def app(redis_ns: Any) -> Iterator[Celery]:
    """An app on the test's Redis namespace (the broker's keys carry its prefix)."""
    # Not the current app: the session's embedded worker and its tests use that one.
    app = Celery("recovery-test", broker=redis_ns.celery_broker_url, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": redis_ns.redis_key_prefix}
    yield app
    app.close()


@pytest.fixture
def broker_redis(redis_ns: Any) -> Iterator[Any]:
    """The broker's Redis database (the message bodies, the unacked hash)."""
    client = redis.Redis.from_url(redis_ns.celery_broker_url)
    yield client
    client.close()


def _unacked(broker_redis: Any, settings: Any, tag: str) -> bool:
    return bool(broker_redis.hexists(settings.redis_key_prefix + "unacked", tag))


@pytest.fixture
def holder(app: Celery) -> Iterator[Connection]:
    """The 'dead' worker's connection: it takes messages and never acknowledges them."""
    conn = app.connection_for_read()
    yield conn
    conn.release()


def _held(
    holder: Connection, queue: str, payload: dict[str, Any], redis_client: Any, settings: Any
) -> tuple[str, Holdings]:
    """A message taken from ``queue`` and never acknowledged by the worker "dead-worker"
    (alive until the test says otherwise): its delivery tag, and that worker's records."""
    taken = holder.SimpleQueue(queue)
    taken.put(payload)
    tag = str(taken.get(timeout=5).delivery_tag)
    dead = Holdings(redis_client, settings, "dead-worker")
    dead.alive()
    dead.took(tag)
    return tag, dead


def test_the_sweep_puts_a_dead_workers_message_back_once(
    app: Celery, holder: Connection, redis_ns: Any, redis_client: Any, broker_redis: Any
) -> None:
    queue = "recovery-q"
    tag, dead = _held(holder, queue, {"turn": 3}, redis_client, redis_ns)
    assert _unacked(broker_redis, redis_ns, tag)

    keeper = Keeper(app, redis_ns)
    try:
        # Alive: nothing is touched, however long it holds the message.
        assert keeper.sweep().restored == 0
        assert _unacked(broker_redis, redis_ns, tag)

        dead.leaving()  # its liveness key gone, as after its TTL
        report = keeper.sweep()
        assert report.dead == ["dead-worker"] and report.restored == 1
        assert not _unacked(broker_redis, redis_ns, tag)
        # A second sweep finds nothing: the dead worker is forgotten.
        assert keeper.sweep().restored == 0
    finally:
        keeper.stop()

    with app.connection_for_read() as conn:
        again = conn.SimpleQueue(queue)
        back = again.get(timeout=5)
        assert back.payload == {"turn": 3}
        assert back.delivery_tag == tag  # the same message, not a copy
        back.ack()
        with pytest.raises(again.Empty):  # exactly one copy went back
            again.get(timeout=1)
        again.close()


def test_a_message_another_worker_took_since_is_left_alone(
    app: Celery, holder: Connection, redis_ns: Any, redis_client: Any, broker_redis: Any
) -> None:
    tag, dead = _held(holder, "recovery-q2", {"turn": 1}, redis_client, redis_ns)
    dead.leaving()
    live = Holdings(redis_client, redis_ns, "live-worker")
    live.alive()
    live.took(tag)  # as after a put-back and a new delivery

    keeper = Keeper(app, redis_ns)
    try:
        report = keeper.sweep()
    finally:
        keeper.stop()
    assert report.restored == 0 and report.taken_over == 1
    assert _unacked(broker_redis, redis_ns, tag)


def test_an_orphan_no_worker_named_is_put_back_once_past_the_ttl(
    app: Celery, holder: Connection, redis_ns: Any, broker_redis: Any
) -> None:
    """A worker killed between the broker's hand-over and its record of the message leaves
    it unacknowledged with no holder: put back once it is older than the liveness TTL."""
    short = redis_ns.model_copy(update={"worker_liveness_ttl_s": 1.0})
    taken = holder.SimpleQueue("recovery-q3")
    taken.put({"turn": 2})
    tag = str(taken.get(timeout=5).delivery_tag)  # never recorded by any worker

    keeper = Keeper(app, short)
    try:
        young = keeper.sweep()  # just delivered: its worker may be recording it now
        assert young.orphans == 0 and _unacked(broker_redis, redis_ns, tag)
        time.sleep(1.5)  # past the TTL (a lower bound: a slow machine only waits longer)
        redis_client = make_redis(redis_ns)
        redis_client.delete(redis_ns.redis_key("round", "recovery.orphans"))  # next interval
        redis_client.close()
        old = keeper.sweep()
    finally:
        keeper.stop()
    assert old.orphans == 1
    assert not _unacked(broker_redis, redis_ns, tag)
    with app.connection_for_read() as conn:
        back = conn.SimpleQueue("recovery-q3").get(timeout=5)
        assert back.delivery_tag == tag and back.payload == {"turn": 2}
        back.ack()
