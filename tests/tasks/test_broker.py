"""The broker transport (tasks/broker.py): a channel closed after Celery detached its
transport (a connection lost while Redis was down) restores its unacked messages
instead of failing with an error that makes the worker exit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection

from tasks import broker

KOMBU_REDIS = "kombu.transport.redis:Transport"


@pytest.fixture
def connection(redis_ns: Any) -> Iterator[Any]:
    """A factory of kombu connections to the test's Redis namespace."""
    opened: list[Connection] = []

    def open_(transport: str | None = None) -> Connection:
        conn = Connection(
            redis_ns.celery_broker_url,
            transport=transport,
            transport_options={"global_keyprefix": redis_ns.redis_key_prefix},
        )
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.release()


def _deliver_unacked(conn: Connection, queue: str) -> Any:
    """Put one message on ``queue`` and take it without acknowledging it."""
    simple = conn.SimpleQueue(queue)
    simple.put({"n": 1})
    message = simple.get(timeout=5)
    assert message.payload == {"n": 1}
    return simple


def test_redis_urls_resolve_to_our_transport(connection: Any) -> None:
    broker.install()
    conn = connection()
    assert isinstance(conn.transport, broker.Transport)
    assert conn.as_uri().startswith("redis://")  # logs still show the real scheme


def test_closing_a_detached_channel_restores_its_unacked_message(
    connection: Any, redis_ns: Any, request: pytest.FixtureRequest
) -> None:
    broker.install()
    redis_client = redis.Redis.from_url(redis_ns.celery_broker_url)
    request.addfinalizer(redis_client.close)
    conn = connection()
    simple = _deliver_unacked(conn, "detached-restore")
    queue_key = redis_ns.redis_key_prefix + "detached-restore"
    assert redis_client.llen(queue_key) == 0
    assert redis_client.hlen(redis_ns.redis_key_prefix + "unacked") == 1
    channel = simple.channel
    conn._do_close_transport()  # what Connection.collect() does after a failed close
    assert channel.connection.client is None

    channel.close()

    # The message is back on its queue (a list in Redis), nothing left unacked.
    assert redis_client.llen(queue_key) == 1
    assert redis_client.hlen(redis_ns.redis_key_prefix + "unacked") == 0


def test_kombus_own_channel_still_fails_there(connection: Any) -> None:
    """The upstream behaviour the transport works around.  When this fails, kombu has
    fixed it and tasks/broker.py can go."""
    conn = connection(KOMBU_REDIS)
    simple = _deliver_unacked(conn, "detached-upstream")
    channel = simple.channel
    conn._do_close_transport()
    with pytest.raises(AttributeError, match="hostname"):
        channel.close()
