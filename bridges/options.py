"""The bridge's knobs.

Four are settings (``CHIMERA_BRIDGE_QUEUE_HIGH_WATER``, ``_LOW_WATER``,
``CHIMERA_BRIDGE_RETRY_BASE_S``, ``_CAP_S``: see the README in this folder), read by
``BridgeOptions.from_settings``; the others are the bridge's own timings, kept here.
Tests override any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chimera import defaults as d
from chimera.settings import Settings

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
    queue_high_water: int = d.BRIDGE_QUEUE_HIGH_WATER
    queue_low_water: int = d.BRIDGE_QUEUE_LOW_WATER
    retry_base_s: float = d.BRIDGE_RETRY_BASE_S
    retry_cap_s: float = d.BRIDGE_RETRY_CAP_S
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
    def from_settings(cls, settings: Settings, **overrides: Any) -> BridgeOptions:
        """Options from the settings, with ``overrides`` (tests) on top."""
        values: dict[str, Any] = {
            "queue_high_water": settings.bridge_queue_high_water,
            "queue_low_water": settings.bridge_queue_low_water,
            "retry_base_s": settings.bridge_retry_base_s,
            "retry_cap_s": settings.bridge_retry_cap_s,
            "heartbeat_interval_s": min(settings.heartbeat_interval_s, HEARTBEAT_MAX_INTERVAL_S),
        }
        return cls(**(values | overrides))
