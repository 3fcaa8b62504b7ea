"""The Redis broker transport, with one fix: a worker survives a Redis restart.

When a worker loses its broker connection, Celery (5.7) first ``collect()``s the
connection, which detaches the transport from its connection (``transport.client =
None``), and then closes it.  If Redis was still down during ``collect()``, the
channel was not closed then; closing it the second time restores the unacknowledged
messages, which needs the connection parameters, which are read from
``transport.client``: ``AttributeError: 'NoneType' object has no attribute
'hostname'``.  That error is not a connection error, so nothing catches it, and the
worker exits ("Unrecoverable error") on every Redis restart with tasks in flight.

Here the channel keeps the connection it was opened on and reads the parameters
from it once the transport has been detached.  Restoring then either works (Redis is
back) or raises a connection error, which the close ignores; the messages stay in
the unacked set and the visibility sweep restores them.  ``tests/reliability/
test_redis_faults.py`` restarts Redis under a running worker to prove it.
"""

from __future__ import annotations

from typing import Any

import kombu.transport as kombu_transport
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_on = connection.client
        super().__init__(connection, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport.client is not None:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call,no-any-return]
        transport.client = self._opened_on  # detached: read from the connection we had
        try:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call,no-any-return]
        finally:
            transport.client = None


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport in this process,
    so URLs, logs and ``celery inspect`` keep showing ``redis://``.  kombu resolves a
    scheme through ``TRANSPORT_ALIASES`` and caches the class it found: a connection
    made before this call would otherwise keep kombu's own."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = _SELF
        kombu_transport._transport_cache.pop(scheme, None)


_SELF = f"{__name__}:Transport"
