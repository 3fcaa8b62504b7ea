"""Redis connections for our own state (locks, limits, heartbeats, queues)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from chimera.redis_errors import redis_errors
from chimera.settings import Settings
from chimera.settings_values import redact_url


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
    kwargs = client.connection_pool.connection_kwargs
    where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    with redis_errors(f"Redis at {redact_url(where)} does not answer"):
        client.ping()


@dataclass(frozen=True)
class ScriptCall:
    """One Lua script invocation, to be run alone or with others in one round trip."""

    script: Script
    keys: list[str]
    args: list[Any]


def run_scripts(client: redis.Redis, calls: list[ScriptCall]) -> list[Any]:
    """Run ``calls`` in one pipelined round trip (not a transaction).

    redis-py's own pipeline asks SCRIPT EXISTS before every execute, a second
    round trip; here EVALSHA goes out directly and the scripts are loaded only
    when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH), then retried.
    """
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        try:
            return list(pipe.execute())
        except NoScriptError:
            if attempt == 2:
                raise
            for call in calls:
                client.script_load(call.script.script)
    raise AssertionError("unreachable")  # pragma: no cover
