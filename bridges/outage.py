"""A dependency outage: logged once when it starts and once when it ends, backed off between."""

from __future__ import annotations

import logging
import time

from chimera.errors import (
    ChimeraError,
    DatabaseUnavailable,
    KafkaUnavailable,
    RedisUnavailable,
)
from chimera.retry import compute_backoff

log = logging.getLogger(__name__)


def dependency_of(exc: BaseException) -> str:
    """The name operators know the failing dependency by."""
    if isinstance(exc, DatabaseUnavailable):
        return "Postgres"
    if isinstance(exc, RedisUnavailable):
        return "Redis"
    if isinstance(exc, KafkaUnavailable):
        return "Kafka"
    return f"the bridge ({type(exc).__name__})"


class Outage:
    """Tracks one failing dependency at a time and the back-off before the next try."""

    def __init__(self, *, base_s: float, cap_s: float, effect: str = "holding intake") -> None:
        self._base_s = base_s
        self._effect = effect
        self._cap_s = cap_s
        self.dependency: str | None = None
        self.attempts = 0
        self._since = 0.0

    def failed(self, exc: BaseException, context: str) -> float:
        """Note a failure of ``context`` (e.g. "event e-1"); return the seconds to back off."""
        dependency = dependency_of(exc)
        self.attempts += 1
        delay = compute_backoff(self.attempts, base_s=self._base_s, cap_s=self._cap_s)
        if dependency != self.dependency:
            if self.dependency is None:
                self._since = time.monotonic()
            self.dependency = dependency
            # A known outage is one line; anything else is a bug worth its traceback.
            log.warning(
                "%s unavailable (%s: %s); %s, retrying in %.1fs",
                dependency,
                context,
                exc,
                self._effect,
                delay,
                exc_info=not isinstance(exc, ChimeraError),
            )
        else:
            log.debug(
                "%s still unavailable (%s, attempt %d): %s", dependency, context, self.attempts, exc
            )
        return delay

    def recovered(self, dependency: str | None = None) -> None:
        """End the outage (only if it is ``dependency``'s, when given) and say so."""
        if self.dependency is None or dependency not in (None, self.dependency):
            return
        log.info(
            "%s is back after %.1fs (%d failed attempts)",
            self.dependency,
            time.monotonic() - self._since,
            self.attempts,
        )
        self.dependency = None
        self.attempts = 0
