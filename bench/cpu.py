"""CPU-seconds spent by the processes a piece of work runs through.

Counted: the bench's own workers and bridge (process and descendants, from psutil), the
Kafka broker, the Postgres backends serving the scratch database (the bench's own polling
connection excluded) and the Redis server (``INFO cpu``; the server is shared with the rest
of the machine, so what others do at the same time is counted too).  Not counted: the
simulator, which stands in for the LLM provider.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any


def _process_cpu(pid: int, *, descendants: bool) -> float | None:
    """User + system CPU-seconds of ``pid`` (and its descendants); None once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = float(times.user + times.system)
        children = root.children(recursive=True) if descendants else []
    except psutil.Error:
        return None
    for child in children:
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


class CpuMeter:
    """Snapshots of CPU-seconds per source; ``delta`` between two snapshots."""

    def __init__(self, settings: Any, engine: Any, pids: dict[str, int]) -> None:
        import redis

        self._pids = pids
        self._engine = engine
        self._redis = redis.Redis.from_url(settings.redis_url_for(settings.redis_broker_db))
        self._database = engine.url.database
        self._conn = engine.connect()  # the bench's own backend, left out of the count
        self._own_pid = self._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

    def _backends(self) -> Iterable[int]:
        from sqlalchemy import text

        query = text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> :own")
        rows = self._conn.execute(query, {"db": self._database, "own": self._own_pid})
        return [int(pid) for (pid,) in rows]

    def snapshot(self) -> dict[str, float]:
        """CPU-seconds so far of every source (Postgres per backend pid)."""
        snap: dict[str, float] = {}
        sources = [(name, pid, True) for name, pid in self._pids.items()]
        sources += [(f"postgres:{pid}", pid, False) for pid in self._backends()]
        for name, pid, descendants in sources:
            used = _process_cpu(pid, descendants=descendants)
            if used is not None:
                snap[name] = used
        info = self._redis.info("cpu")
        snap["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        snap["bench client"] = sum(os.times()[:2])
        return snap

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU-seconds per source between two snapshots (Postgres backends summed; one that
        started in between counts from zero, one that ended in between is not counted)."""
        out: dict[str, float] = {}
        for key, value in after.items():
            name = "postgres" if key.startswith("postgres:") else key
            out[name] = out.get(name, 0.0) + value - before.get(key, 0.0)
        return out

    def close(self) -> None:
        self._conn.close()
        self._redis.close()
