"""Liveness keys: each long-running component writes one with a TTL.

``stack status`` and ``/readyz`` read them; a missing key means the component has
not beaten within its TTL.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis

from chimera import defaults as d
from chimera.redis_errors import redis_errors
from chimera.settings import Settings


@dataclass(frozen=True)
class Heartbeat:
    component: str
    instance: str
    at: float
    info: dict[str, Any]

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.at)


def _key(settings: Settings, component: str, instance: str = "") -> str:
    parts = [d.KEY_HEARTBEAT, component] + ([instance] if instance else [])
    return settings.redis_key(*parts)


def beat(
    client: redis.Redis,
    settings: Settings,
    component: str,
    *,
    instance: str = "",
    ttl_s: float | None = None,
    at: float | None = None,
    **info: Any,
) -> None:
    """Record that ``component`` (one ``instance`` of it) is alive now."""
    ttl = ttl_s or settings.heartbeat_interval_s * 3
    value = {"at": at or time.time(), "pid": os.getpid(), "host": socket.gethostname()}
    with redis_errors(f"cannot write the {component} heartbeat"):
        client.set(
            _key(settings, component, instance),
            json.dumps(value | info),
            px=int(ttl * 1000),
        )


def read(client: redis.Redis, settings: Settings, component: str) -> list[Heartbeat]:
    """Every live heartbeat of ``component``, newest first."""
    pattern = _key(settings, component) + "*"
    with redis_errors(f"cannot read the {component} heartbeats"):
        keys = sorted(client.scan_iter(match=pattern, count=100))
        values = client.mget(keys) if keys else []
    beats = []
    base = _key(settings, component)
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        data = json.loads(raw)
        instance = key[len(base) + 1 :] if key != base else ""
        at = float(data.pop("at"))
        beats.append(Heartbeat(component, instance, at, data))
    return sorted(beats, key=lambda b: b.at, reverse=True)
