"""Engines.

Create engines after fork (a pool must not cross a ``fork()``): worker processes
call ``make_engine`` from their process-init hook, never at import time.

No statement waits for ever (``CHIMERA_DB_STATEMENT_TIMEOUT_S``):

- the server cancels a statement that runs longer (``statement_timeout``; the
  error is a retryable ``DatabaseUnavailable``);
- the client gives up on a server that does not answer at all (accepting
  connections and bytes, answering nothing): TCP keepalives and
  ``tcp_user_timeout`` catch a peer that is gone, but a hung server whose kernel
  still acknowledges every byte passes both, so every wait on the socket is also
  bounded here.  psycopg2 waits through ``_wait``, which polls the socket; past
  the setting plus ``_CLIENT_MARGIN_S`` it shuts the connection's socket and raises an
  ``OperationalError`` SQLAlchemy counts as a disconnect (the pool drops it),
  which ``database_errors`` turns into ``DatabaseUnavailable``.

The wait callback is process-wide (psycopg2's "green" mode: no COPY); connections
not made here wait unbounded.  With ``pool_pre_ping`` a hung server costs up to two
bounds: the ping, then the reconnect.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy import Engine, create_engine

from chimera.settings import Settings

#: How long after the server's own timeout the client gives up (the server's error
#: comes first when the server is alive).
_CLIENT_MARGIN_S = 5.0

#: Seconds of silence before the first keepalive probe, between probes, and probes
#: lost before the connection is dropped.
_KEEPALIVE_IDLE_S = 10
_KEEPALIVE_INTERVAL_S = 5
_KEEPALIVE_COUNT = 3


class _BoundedConnection(psycopg2.extensions.connection):  # type: ignore[misc]
    """A psycopg2 connection whose every wait on the server is bounded."""

    answer_timeout_s: float | None = None


def _connection_class(answer_timeout_s: float) -> type[_BoundedConnection]:
    return type("BoundedConnection", (_BoundedConnection,), {"answer_timeout_s": answer_timeout_s})


def _wait(conn: Any) -> None:
    """psycopg2's wait callback: poll until done, giving up on a silent server.

    Connections not made by ``make_engine`` wait without a bound, as they would
    without the callback.
    """
    bound = getattr(conn, "answer_timeout_s", None)
    deadline = None if bound is None else time.monotonic() + bound
    poller = select.poll()
    registered = False
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            events = select.POLLIN
        elif state == psycopg2.extensions.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")
        if registered:
            poller.modify(conn.fileno(), events)
        else:
            poller.register(conn.fileno(), events)
            registered = True
        if deadline is None:
            poller.poll()
            continue
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1_000):
            _shut(conn.fileno())
            # "could not receive data from server": SQLAlchemy's mark of a lost connection.
            raise psycopg2.OperationalError(
                f"could not receive data from server: no answer in {bound:g} s"
            )


def _shut(fd: int) -> None:
    """End the connection's socket under libpq (``close`` from here would wait for the
    operation in progress); the pool then discards the connection."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def make_engine(settings: Settings, *, url: str | None = None) -> Engine:
    """An engine with a checked pool sized for the worker's concurrency, whose
    statements end within ``db_statement_timeout_s`` (plus a margin) whatever the server does."""
    timeout_s = settings.db_statement_timeout_s
    answer_timeout_s = timeout_s + _CLIENT_MARGIN_S
    psycopg2.extensions.set_wait_callback(_wait)
    return create_engine(
        url or settings.database_url.get_secret_value(),
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=1_800,
        connect_args={
            "connect_timeout": 5,
            "application_name": "chimera",
            "options": f"-c statement_timeout={round(timeout_s * 1_000)}",
            "keepalives": 1,
            "keepalives_idle": _KEEPALIVE_IDLE_S,
            "keepalives_interval": _KEEPALIVE_INTERVAL_S,
            "keepalives_count": _KEEPALIVE_COUNT,
            "tcp_user_timeout": round(answer_timeout_s * 1_000),
            "connection_factory": _connection_class(answer_timeout_s),
        },
    )
