"""A dead worker's messages go back to the queue within seconds, not after the
visibility timeout.

Every worker process (``chimera.holdings`` has the records and the reasoning):

- records each message it receives and forgets it when acknowledged or rejected
  (``HeldRequest``, the request class of every Chimera task);
- keeps a liveness key, written every third of ``CHIMERA_WORKER_LIVENESS_TTL_S`` by a
  thread of its own, so a worker busy with long calls or long ``retry-after`` waits
  stays alive;
- every ``CHIMERA_RECOVERY_INTERVAL_S``, looks for workers whose liveness key has
  expired and puts what they held back at the head of the queue, with kombu's own
  restore (``QoS.restore_by_tag``, the one a rejected message goes through); and, one
  worker per interval fleet-wide (``chimera.rounds``), puts back the orphans: messages
  unacknowledged past the TTL that no worker named (its worker died as it took them).

A worker SIGKILLed, or lost with its machine, has its turn, its prefetched messages and
the retries it was waiting out running again on another worker within the TTL plus one
interval (about 20 s with the defaults).  The turn itself cannot run twice at once: the
conversation's lease (fenced) is the dead worker's until it expires, and the liveness
TTL is at least the lease's.  A graceful stop (SIGTERM, remapped to Celery's soft
shutdown by ``tasks.worker``) gives running tasks the soft-shutdown window, puts the
rest back as it closes, and removes its liveness key last, so whatever it left is swept
at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.worker.request import Request

from chimera.errors import ChimeraError
from chimera.holdings import Holdings, new_worker_id
from chimera.metrics import MESSAGES_RESTORED
from chimera.redis_client import make_redis
from chimera.redis_errors import redis_errors
from chimera.rounds import take_round
from chimera.settings import Settings

log = logging.getLogger(__name__)


#: At most this many orphans are put back by one sweep (the next sweep goes on).
ORPHAN_BATCH = 500
#: kombu's Redis transport: the delivery time of each unacknowledged message.
UNACKED_INDEX = "unacked_index"


@dataclass
class SweepReport:
    dead: list[str] = field(default_factory=list)
    restored: int = 0
    taken_over: int = 0
    orphans: int = 0


class Keeper:
    """This worker process's liveness, its held messages, and its sweeps for dead ones."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._client = make_redis(settings)
        self._broker = make_redis(settings, db=settings.redis_broker_db)
        self.holdings = Holdings(self._client, settings, new_worker_id())
        self._every = settings.recovery_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- records -----------------------------------------------------------------------------

    def took(self, tag: str) -> None:
        try:
            self.holdings.took(tag)
        except ChimeraError as exc:  # it comes back after the visibility timeout instead
            log.warning("could not record a held message: %s", exc)

    def done(self, tag: str) -> None:
        try:
            self.holdings.done(tag)
        except ChimeraError as exc:  # a stale record: a sweep finds nothing to put back
            log.warning("could not clear a held message: %s", exc)

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.holdings.alive()
        except ChimeraError as exc:
            log.warning("could not write this worker's liveness yet: %s", exc)
        self._thread = threading.Thread(target=self._run, name="worker-keeper", daemon=True)
        self._thread.start()
        log.info("worker %s: liveness and recovery sweeps on", self.holdings.worker_id)

    def stop(self) -> None:
        """After the consumer closed (its unstarted messages are back in the queue)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.holdings.leaving()
        except ChimeraError as exc:
            log.warning("could not remove this worker's liveness: %s", exc)
        self._client.close()
        self._broker.close()

    def _run(self) -> None:
        beat_every = self._settings.worker_liveness_ttl_s / 3
        sweep_every = self._every
        next_beat = next_sweep = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + beat_every
                try:
                    self.holdings.alive()
                except ChimeraError as exc:
                    log.warning("could not write this worker's liveness: %s", exc)
            if now >= next_sweep:
                next_sweep = now + sweep_every
                try:
                    self.sweep()
                except ChimeraError as exc:
                    log.warning("recovery sweep cut short, the next one goes on: %s", exc)
                except Exception:  # the thread must outlive one bad sweep
                    log.exception("recovery sweep failed; the next one goes on")
            self._stop.wait(max(0.05, min(next_beat, next_sweep) - time.monotonic()))

    # --- the sweep -----------------------------------------------------------------------------

    def sweep(self) -> SweepReport:
        """Put back every message a dead worker held (and nobody has taken since)."""
        report = SweepReport()
        for dead in self.holdings.dead_workers():
            report.dead.append(dead)
            restored = taken_over = 0
            for tag in sorted(self.holdings.held(dead)):
                if not self.holdings.claim(dead, tag):
                    taken_over += 1
                    continue
                self._restore(tag)
                self.holdings.restored(tag, dead)
                restored += 1
            self.holdings.forget(dead)
            report.restored += restored
            report.taken_over += taken_over
            if restored:
                MESSAGES_RESTORED.inc(restored)
                log.warning(
                    "worker %s stopped beating: %d of its messages put back in the queue "
                    "(%d already taken by others)",
                    dead,
                    restored,
                    taken_over,
                )
        if take_round(self._client, self._settings, "recovery.orphans", self._every):
            report.orphans = self._orphans()
        return report

    def _orphans(self) -> int:
        """Put back what no worker named and has waited unacknowledged past the liveness
        TTL: a worker killed between the broker's hand-over and its record of it."""
        before = time.time() - self._settings.worker_liveness_ttl_s
        with redis_errors("cannot read the unacknowledged messages"):
            raw = self._broker.zrangebyscore(
                self._settings.redis_key_prefix + UNACKED_INDEX,
                "-inf",
                before,
                start=0,
                num=ORPHAN_BATCH,
            )
        put_back = 0
        for tag in self.holdings.unnamed([str(t) for t in raw]):
            if self.holdings.claim_orphan(tag):
                self._restore(tag)
                self.holdings.restored(tag)
                put_back += 1
        if put_back:
            MESSAGES_RESTORED.inc(put_back)
            log.warning(
                "%d unacknowledged messages no worker named put back in the queue (their "
                "worker died as it took them)",
                put_back,
            )
        return put_back

    def _restore(self, tag: str) -> None:
        """kombu's put-back of one unacknowledged message, at the head of its queue (a
        message already acknowledged is only dropped from the unacked index)."""
        with self._app.connection_for_write() as conn:
            conn.default_channel.qos.restore_by_tag(tag, leftmost=True)


class _Current:
    keeper: Keeper | None = None


def current() -> Keeper | None:
    """The worker process's keeper (None outside a worker, or before it started)."""
    return _Current.keeper


def start(app: Celery, settings: Settings) -> Keeper:
    keeper = Keeper(app, settings)
    keeper.start()
    _Current.keeper = keeper
    return keeper


def stop() -> None:
    keeper, _Current.keeper = _Current.keeper, None
    if keeper is not None:
        keeper.stop()


class HeldRequest(Request):  # type: ignore[misc]  # celery is untyped
    """A task request that records its message while this worker holds it."""

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(message, *args, **kwargs)
        keeper = current()
        if keeper is not None:
            keeper.took(message.delivery_tag)

    def acknowledge(self) -> None:
        first = not self.acknowledged
        super().acknowledge()
        if first:
            self._forget()

    def reject(self, requeue: bool = False) -> None:
        first = not self.acknowledged
        super().reject(requeue)
        if first:
            self._forget()

    def _forget(self) -> None:
        keeper = current()
        if keeper is not None:
            keeper.done(self._message.delivery_tag)
