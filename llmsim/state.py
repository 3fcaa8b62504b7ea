"""The simulator's run-time state, shared by the request handlers and the admin API."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from typing import Any

from llmsim.calllog import CallLog
from llmsim.config import SimConfig
from llmsim.faults import FaultInjector
from llmsim.limits import RateLimiter


class SimState:
    """Config (replaced atomically), faults, rate-limit windows and the call log."""

    def __init__(self, config: SimConfig) -> None:
        self._lock = threading.Lock()
        self._initial = config
        self._config = config
        self.faults = FaultInjector(config.seed)
        for spec in config.faults:
            self.faults.add(spec)
        self.limiter = RateLimiter()
        self.log = CallLog(config.max_call_records)
        self.started_at = time.monotonic()
        self._ids = itertools.count(1)

    @property
    def config(self) -> SimConfig:
        return self._config

    def configure(self, changes: Mapping[str, Any]) -> SimConfig:
        """Apply a partial update (see :meth:`SimConfig.updated`); raises ValueError."""
        with self._lock:
            new = self._config.updated(changes)
            if new.seed != self._config.seed:
                self.faults.reseed(new.seed)
            self._config = new
            return new

    def reset(self, *, config: bool = False) -> None:
        """Clear the call log, every fault (start-up ones too) and the rate-limit windows; with
        ``config``, also return to the configuration the simulator started with."""
        with self._lock:
            if config:
                self._config = self._initial
            self.log.clear()
            self.faults.clear()
            self.faults.reseed(self._config.seed)
            self.limiter.reset()

    def request_id(self) -> str:
        return f"req_sim_{next(self._ids):010d}"

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at
