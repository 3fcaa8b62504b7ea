"""kafka-python errors, translated into the error tree in one place.

``kafka_errors`` wraps every block that talks to the cluster: the library's
exceptions leave it as ``KafkaUnavailable`` (retryable) or ``RecordTooLarge``
(permanent), ``from`` the original.

kafka-python marks each error class ``retriable``.  Every retriable one (timeouts,
lost connections, a leader moving, too few in-sync replicas) is an outage.  Among
the rest only the size refusals, ``MessageSizeTooLargeError`` and
``RecordListTooLargeError`` (the producer's ``max_request_size`` or the broker's
``message.max.bytes``), are about the record itself: the same record is refused
every time -> ``RecordTooLarge``.  The other non-retriable ones (no broker
reachable at all, an unsupported broker version, a missing ACL, a bad setting)
end when an operator brings the cluster back or fixes it, which is what a retry
waits for, so they stay ``KafkaUnavailable``.

Errors that mean something other than failure stay with their adapter, caught
inside the block before they reach the mapper (a commit refused after a
rebalance, a topic that already exists).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

from chimera.errors import ChimeraError, KafkaUnavailable, RecordTooLarge

#: The library's refusals of a record (or batch) for its size.
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


@contextmanager
def kafka_errors(message: str, **ids: Any) -> Iterator[None]:
    """Translate the block's kafka-python errors; the error reads ``"<message>: <error>"``."""
    try:
        yield
    except KafkaError as exc:
        raise kafka_error(message, exc, **ids) from exc


def kafka_error(message: str, exc: KafkaError, **ids: Any) -> ChimeraError:
    """The Chimera error for the kafka-python error ``exc`` (see the module docstring)."""
    permanent = not exc.retriable and isinstance(exc, TOO_LARGE)
    cls = RecordTooLarge if permanent else KafkaUnavailable
    return cls(f"{message}: {exc}", **ids)
