"""The bridge's knobs, with their defaults.

``BridgeOptions.from_settings`` reads the ``bridge_*`` fields of the settings
when they exist (``CHIMERA_BRIDGE_QUEUE_HIGH_WATER`` and friends, see the
README in this folder) and falls back to the defaults here until they do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: Pause intake when this many hand-offs wait in the Celery queue ...
QUEUE_HIGH_WATER = 1_000
#: ... and resume when the queue is down to this many.
QUEUE_LOW_WATER = 500
#: Back-off after a transient failure: base_s * 2**(attempt-1), capped, jittered.
RETRY_BASE_S = 0.5
RETRY_CAP_S = 30.0
#: Longest wait inside one poll: bounds how late a stop or a heartbeat can be.
POLL_TIMEOUT_MS = 500
#: The broker waits at most this long to fill a fetch (the client default, 500,
#: adds ~130 ms of latency per event on Tansu, as measured).
FETCH_MAX_WAIT_MS = 100
#: The queue depth is read after every batch that sent hand-offs, else this often.
DEPTH_CHECK_INTERVAL_S = 0.5
#: Heartbeats at most this far apart (or the settings' interval, if shorter).
HEARTBEAT_MAX_INTERVAL_S = 5.0


@dataclass(frozen=True)
class BridgeOptions:
    queue_high_water: int = QUEUE_HIGH_WATER
    queue_low_water: int = QUEUE_LOW_WATER
    retry_base_s: float = RETRY_BASE_S
    retry_cap_s: float = RETRY_CAP_S
    poll_timeout_ms: int = POLL_TIMEOUT_MS
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    depth_check_interval_s: float = DEPTH_CHECK_INTERVAL_S
    heartbeat_interval_s: float = HEARTBEAT_MAX_INTERVAL_S

    def __post_init__(self) -> None:
        if not 0 <= self.queue_low_water < self.queue_high_water:
            raise ValueError(
                "the bridge's queue low-water mark must be below its high-water mark "
                f"(got {self.queue_low_water} and {self.queue_high_water})"
            )

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> BridgeOptions:
        """Options from ``settings.bridge_<name>`` where present, else the defaults."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = getattr(settings, f"bridge_{field.name}", None)
            if value is not None:
                values[field.name] = value
        heartbeat = min(settings.heartbeat_interval_s, HEARTBEAT_MAX_INTERVAL_S)
        values.setdefault("heartbeat_interval_s", heartbeat)
        return cls(**(values | overrides))
