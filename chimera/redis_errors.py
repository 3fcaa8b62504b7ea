"""redis-py errors, translated into the error tree in one place.

``redis_errors`` wraps every block that talks to our Redis: the library's
exceptions leave it as ``RedisUnavailable`` (retryable) or ``DataRejected``
(permanent), ``from`` the original.

- Connection refused or lost, timeouts, a server loading its data set, a replica
  that is read-only after a failover, out of memory, busy with a script, a cluster
  that is down: a retry may pass -> ``RedisUnavailable``.
- Redis refusing the command itself (WRONGTYPE: the key holds another kind of
  value; a Lua script's runtime or compile error; a value that is not an integer;
  a syntax or argument error; a transaction aborted for one of these) or redis-py
  refusing a value before sending it (``DataError``, e.g. ``None``): the same
  command fails the same way every time -> ``DataRejected``.

An error reply we cannot name stays ``RedisUnavailable``, as it always was: a
wait costs time, dead-lettering would lose the event's work.

Lock semantics are not errors of the library: ``LockNotAcquired`` and
``StaleLockToken`` are decided from script results where the lease lives
(``chimera.conversation.store``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import (
    ClusterError,
    ConnectionError,
    DataError,
    ExecAbortError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from chimera.errors import ChimeraError, DataRejected, RedisUnavailable

#: How Redis words (after redis-py strips its ``ERR `` prefix) a command that can
#: never succeed as sent.
_COMMAND_REFUSED = (
    "WRONGTYPE",
    "user_script:",  # a runtime error inside one of our scripts
    "Error compiling script",
    "from script",  # a bad redis.call inside a script
    "value is not",  # an integer / a valid float
    "out of range",
    "syntax error",
    "wrong number of arguments",
)

#: Error replies that describe the server's state, not the command.
_SERVER_STATE = (ConnectionError, TimeoutError, ReadOnlyError, OutOfMemoryError, ClusterError)


@contextmanager
def redis_errors(message: str, **ids: Any) -> Iterator[None]:
    """Translate the block's redis-py errors; the error reads ``"<message>: <error>"``."""
    try:
        yield
    except RedisError as exc:
        raise redis_error(message, exc, **ids) from exc


def redis_error(message: str, exc: RedisError, **ids: Any) -> ChimeraError:
    """The Chimera error for the redis-py error ``exc`` (see the module docstring)."""
    cls = DataRejected if is_command_error(exc) else RedisUnavailable
    return cls(f"{message}: {exc}", **ids)


def is_command_error(exc: RedisError) -> bool:
    """True when Redis (or redis-py) refused the command as sent, so no retry can help."""
    if isinstance(exc, DataError):
        return True
    if isinstance(exc, _SERVER_STATE) or not isinstance(exc, ResponseError):
        return False
    if isinstance(exc, ExecAbortError):
        return True  # a queued command was refused, so the transaction was
    text = str(exc)
    return any(words in text for words in _COMMAND_REFUSED)


@contextmanager
def broker_errors(message: str, **ids: Any) -> Iterator[None]:
    """Translate what the Celery broker's client raises when the Redis under it is
    away (kombu's ``OperationalError``, redis-py's errors, the socket's ``OSError``)
    into ``RedisUnavailable``; the error reads ``"<message>: <error>"``."""
    try:
        yield
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise RedisUnavailable(f"{message}: {exc}", **ids) from exc
