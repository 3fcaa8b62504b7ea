"""Per-process resources of a worker: opened at start, closed at shutdown.

Created lazily on first use as well, so tasks also work in an embedded test
worker.  Connections are made after fork, never at import time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from chimera.redis_client import make_redis
from chimera.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.redis = make_redis(self.settings)

    def close(self) -> None:
        self.redis.close()


class _Holder:
    """The process's one Runtime, guarded for the thread pool."""

    lock = threading.Lock()
    current: Runtime | None = None


def runtime() -> Runtime:
    """This process's resources, opened on first use."""
    with _Holder.lock:
        if _Holder.current is None:
            _Holder.current = Runtime(get_settings())
        return _Holder.current


@worker_process_init.connect  # prefork children; thread pools open lazily
def _open(**_: Any) -> None:
    runtime()


@worker_process_shutdown.connect  # prefork children
@worker_shutdown.connect  # the main process (thread pools)
def _close(**_: Any) -> None:
    with _Holder.lock:
        if _Holder.current is not None:
            _Holder.current.close()
            _Holder.current = None
