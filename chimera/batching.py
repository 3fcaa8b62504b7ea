"""A background batcher: items queued by callers, handled in batches by one thread.

Used for work that must happen after an LLM call but need not delay its caller
(audit rows, limiter reconciles).  The thread starts on first use; ``flush``
waits until everything queued has been handled; ``close`` flushes and stops.
A batch whose handler raises one of ``retry_on`` is kept and retried with
backoff; past ``max_pending`` the oldest items are dropped and counted through
``on_drop``.  What a SIGKILL can lose is what was queued and not yet handled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from chimera.retry import compute_backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        *,
        interval_s: float,
        max_batch: int = 500,
        max_pending: int = 50_000,
        retry_on: tuple[type[BaseException], ...] = (),
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.name = name
        self._handle = handle
        self._interval = interval_s
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._retry_on = retry_on
        self._on_drop = on_drop
        self._pending: deque[T] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, item: T) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self._on_drop(1)
                log.error(
                    "%s backlog over %d items: dropped the oldest", self.name, self._max_pending
                )
            self._pending.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            if len(self._pending) >= self._max_batch:
                self._cond.notify_all()

    def _take(self) -> list[T] | None:
        """The next batch (None: closed and empty), waiting up to one interval for it."""
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait(timeout=self._interval)
            if not self._pending:
                return None if self._closed else []
            count = min(self._max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        failures = 0
        while (batch := self._take()) is not None:
            if not batch:
                continue
            try:
                self._handle(batch)
                failures = 0
            except self._retry_on as exc:
                failures += 1
                delay = compute_backoff(failures, base_s=0.5, cap_s=30.0)
                log.warning(
                    "%s: batch of %d failed (%s); retrying in %.1fs",
                    self.name,
                    len(batch),
                    exc,
                    delay,
                )
                if not self._requeue(batch, delay):
                    return
                continue
            except Exception:  # a bug in a handler must not kill the thread silently
                log.exception("%s: dropping a batch of %d", self.name, len(batch))
                self._on_drop(len(batch))
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()
                if len(self._pending) < self._max_batch and not self._closed:
                    # gather the next batch; close() or flush() wakes us early
                    self._cond.wait(timeout=self._interval)

    def _requeue(self, batch: list[T], delay_s: float) -> bool:
        """Put a failed batch back (False: closing, so it is dropped instead)."""
        with self._cond:
            self._pending.extendleft(reversed(batch))
            self._in_flight = 0
            if self._closed:
                dropped = len(self._pending)
                self._pending.clear()
                self._on_drop(dropped)
                log.error("%s: dropping %d items at shutdown", self.name, dropped)
                self._cond.notify_all()
                return False
            self._cond.wait(timeout=delay_s)
            return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything submitted is handled; False if ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=min(remaining, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
