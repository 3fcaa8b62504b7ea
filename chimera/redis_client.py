"""Redis connections for our own state (locks, limits, heartbeats, queues)."""

from __future__ import annotations

import redis
from redis.exceptions import RedisError

from chimera.errors import RedisUnavailable
from chimera.settings import Settings, redact_url


def make_redis(settings: Settings, *, db: int | None = None) -> redis.Redis:
    """A client for the state database (or ``db``), with bounded timeouts."""
    url = settings.redis_url_for(settings.redis_state_db if db is None else db)
    return redis.Redis.from_url(
        url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        health_check_interval=settings.redis_health_check_interval_s,
        decode_responses=True,
    )


def ping(client: redis.Redis) -> None:
    """Raise ``RedisUnavailable`` unless Redis answers PING."""
    try:
        client.ping()
    except RedisError as exc:
        kwargs = client.connection_pool.connection_kwargs
        where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        raise RedisUnavailable(f"Redis at {redact_url(where)} does not answer: {exc}") from exc
