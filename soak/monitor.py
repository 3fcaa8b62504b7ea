"""Periodic samples (RSS of every component, inbox counts, queue depth) and the progress line.

RSS comes from ``/proc/<pid>/status`` (``VmRSS``) of each component's process and its
children.  A component that exits while no fault is being injected is an unexpected
exit: it is recorded and the stack's ``up`` starts it again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from chimera import heartbeat
from chimera.errors import ChimeraError
from chimera.redis_client import make_redis
from chimera.stack.control import COMPONENTS
from soak.environment import PrivateRedis, SoakStack
from soak.faults import FaultRecord
from soak.workload import PublishLog

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Sample:
    at: float  # Unix time
    rss_mb: dict[str, tuple[int, float]]  # component -> (pid, MB)
    accepted: int  # inbox rows
    done: int
    dead_lettered: int
    published: int
    queue_depth: int | None

    @property
    def settled(self) -> int:
        return self.done + self.dead_lettered

    def to_json(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 2),
            "rss_mb": {k: {"pid": p, "mb": round(mb, 2)} for k, (p, mb) in self.rss_mb.items()},
            "accepted": self.accepted,
            "done": self.done,
            "dead_lettered": self.dead_lettered,
            "published": self.published,
            "queue_depth": self.queue_depth,
        }


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` and its children, in MB (None if it is gone)."""
    pids = [pid]
    with contextlib.suppress(psutil.Error):
        pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    total_kb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError):
            if p == pid:
                return None
    return total_kb / 1024


@dataclass
class UnexpectedExit:
    component: str
    pid: int
    at: float
    restarted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "pid": self.pid,
            "at": self.at,
            "restarted": self.restarted,
        }


class Monitor(threading.Thread):
    def __init__(
        self,
        stack: SoakStack,
        engine: Engine,
        *,
        published: PublishLog,
        planned: int,
        faults: list[FaultRecord],
        echo: Echo,
        sample_every_s: float = 5.0,
        progress_every_s: float = 15.0,
    ) -> None:
        super().__init__(name="soak-monitor", daemon=True)
        self.stack = stack
        self.engine = engine
        self.published = published
        self.planned = planned
        self.faults = faults
        self.echo = echo
        self.sample_every_s = sample_every_s
        self.progress_every_s = progress_every_s
        self.samples: list[Sample] = []
        self.exits: list[UnexpectedExit] = []
        self.stopping = threading.Event()
        self.started_at = time.time()
        self._last_counts = (0, 0, 0)

    def run(self) -> None:
        last_progress = 0.0
        while not self.stopping.is_set():
            try:
                sample = self.sample()
                self._watch_components()
                if time.monotonic() - last_progress >= self.progress_every_s:
                    self.echo(self.line(sample))
                    last_progress = time.monotonic()
            except Exception:  # the monitor must outlive anything it observes
                log.exception("soak monitor: sample failed")
            self.stopping.wait(self.sample_every_s)

    def sample(self) -> Sample:
        rss: dict[str, tuple[int, float]] = {}
        for name, pid in self.stack.live_pids().items():
            mb = rss_mb(pid)
            if mb is not None:
                rss[name] = (pid, mb)
        accepted, done, dead = self._counts()
        sample = Sample(
            time.time(), rss, accepted, done, dead, self.published.count(), self._queue_depth()
        )
        self.samples.append(sample)
        return sample

    def _counts(self) -> tuple[int, int, int]:
        try:
            with self.engine.connect() as conn:
                rows: dict[str, int] = dict(
                    conn.execute(text("SELECT status, count(*) FROM events GROUP BY status")).all()
                )
        except SQLAlchemyError:
            return self._last_counts
        counts = (
            sum(rows.values()),
            rows.get("done", 0),
            rows.get("dead_lettered", 0),
        )
        self._last_counts = counts
        return counts

    def _queue_depth(self) -> int | None:
        try:
            client = make_redis(self.stack.settings)
            try:
                beats = heartbeat.read(client, self.stack.settings, "bridge")
            finally:
                client.close()
        except ChimeraError:
            return None
        depth = beats[0].info.get("queue_depth") if beats else None
        return int(depth) if isinstance(depth, int) else None

    def _watch_components(self) -> None:
        """Restart what died outside a fault (a fault holds the stack's lock)."""
        if not self.stack.lock.acquire(blocking=False):
            return
        try:
            dead = []
            for name in (PrivateRedis.NAME, *COMPONENTS):
                record = self.stack.record(name)
                if record is not None and not record.is_alive():
                    dead.append((name, record.pid))
            if not dead:
                return
            restarted = True
            try:
                if any(name == PrivateRedis.NAME for name, _ in dead):
                    self.stack.redis.start()
                self.stack.up()
            except ChimeraError as exc:
                restarted = False
                self.echo(f"  ! could not restart {', '.join(n for n, _ in dead)}: {exc}")
            for name, pid in dead:
                self.exits.append(UnexpectedExit(name, pid, time.time(), restarted))
                self.echo(f"  ! {name} (pid {pid}) exited unexpectedly; restarted: {restarted}")
        finally:
            self.stack.lock.release()

    def line(self, s: Sample) -> str:
        elapsed = int(s.at - self.started_at)
        in_flight = s.accepted - s.settled
        depth = "-" if s.queue_depth is None else str(s.queue_depth)
        last = ""
        if self.faults:
            f = self.faults[-1]
            last = f" (last {f.kind} {int(s.at - f.at)}s ago)"
        mem = " ".join(
            f"{name} {mb:.0f}" for name, (_, mb) in sorted(s.rss_mb.items()) if name != "kafka"
        )
        return (
            f"[{elapsed // 60:3d}m{elapsed % 60:02d}s] published {s.published}/{self.planned}"
            f" | accepted {s.accepted} | done {s.done} | dead-lettered {s.dead_lettered}"
            f" | in flight {in_flight} | queue {depth} | faults {len(self.faults)}{last}"
            f" | RSS MB {mem}"
        )
