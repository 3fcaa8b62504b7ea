"""The faults a soak injects, one every few minutes, in rotation.

=====================  =========================================================================
``worker_kill``        SIGKILL the Celery worker; the stack's ``up`` starts a new one
``bridge_kill``        SIGKILL the Kafka bridge; the stack's ``up`` starts a new one
``redis_restart``      SIGKILL the soak's Redis, start it again on its AOF a few seconds later
``redis_restart_empty`` the same, its data wiped first (queues, chains, state, limits: all gone);
                       once per run
``llm_rate_limit``     for a while, a share of LLM calls answer 429 with ``retry-after``
``llm_server_errors``  for a while, a share of LLM calls answer 500 or 529 (a storm)
``llm_permanent``      a few LLM calls answer 400 or a safety block (permanent: no retry)
``worker_stop``        SIGSTOP the worker for a few seconds, then SIGCONT
=====================  =========================================================================

After a Redis restart the worker is checked with the canary until it consumes again
(workers can stop consuming after a Redis reconnect, docs/reliability.md).  A component that
died with Redis, or a worker that does not consume again, is restarted by the soak and
the fault is marked as having needed help (``ok: false``, ``died: [...]``).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from chimera.errors import ChimeraError
from chimera.stack import checks
from soak.environment import SoakStack

ROTATION = (
    "worker_kill",
    "bridge_kill",
    "redis_restart",
    "llm_rate_limit",
    "worker_stop",
    "llm_server_errors",
    "redis_restart_empty",
    "llm_permanent",
)
ONCE = frozenset({"redis_restart_empty"})
#: Faults whose effect is an interrupted process (calls in flight may be paid again).
PROCESS_FAULTS = frozenset(
    {"worker_kill", "bridge_kill", "redis_restart", "redis_restart_empty", "worker_stop"}
)


@dataclass(frozen=True)
class FaultOptions:
    redis_down_s: float = 3.0
    stop_s: float = 8.0
    rate_limit_s: float = 15.0
    rate_limit_rate: float = 0.5
    retry_after_s: float = 2.0
    storm_s: float = 20.0
    storm_rate: float = 0.4
    permanent_calls: int = 2
    recover_timeout_s: float = 120.0


@dataclass
class FaultRecord:
    kind: str
    at: float  # Unix time the fault began
    duration_s: float = 0.0  # until the system was whole again (restarted, consuming)
    detail: dict[str, Any] = field(default_factory=dict)
    ok: bool = True  # False: recovery needed help beyond the fault's own remedy

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    def __init__(
        self, stack: SoakStack, rotation: tuple[str, ...], options: FaultOptions, sim_url: str
    ) -> None:
        unknown = set(rotation) - set(ROTATION)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(ROTATION)}")
        self.stack = stack
        self.rotation = list(rotation)
        self.options = options
        self.sim_url = sim_url
        self.done: list[FaultRecord] = []
        self._next = 0
        self._actions: dict[str, Callable[[FaultRecord], None]] = {
            "worker_kill": lambda r: self._kill_and_restart("worker", r),
            "bridge_kill": lambda r: self._kill_and_restart("bridge", r),
            "redis_restart": lambda r: self._restart_redis(r, empty=False),
            "redis_restart_empty": lambda r: self._restart_redis(r, empty=True),
            "llm_rate_limit": self._rate_limit,
            "llm_server_errors": self._server_errors,
            "llm_permanent": self._permanent,
            "worker_stop": self._stop_worker,
        }

    def peek(self) -> str | None:
        """The fault :meth:`inject_next` will inject."""
        return self.rotation[self._next % len(self.rotation)] if self.rotation else None

    def inject_next(self) -> FaultRecord | None:
        """Inject the next fault of the rotation; None if the rotation is empty."""
        if not self.rotation:
            return None
        kind = self.rotation[self._next % len(self.rotation)]
        if kind in ONCE:
            self.rotation.remove(kind)
        else:
            self._next += 1
        record = FaultRecord(kind, time.time())
        started = time.monotonic()
        try:
            self._actions[kind](record)
        except ChimeraError as exc:
            record.ok = False
            record.detail["error"] = str(exc)
        record.duration_s = round(time.monotonic() - started, 2)
        self.done.append(record)
        return record

    # --- processes -------------------------------------------------------------------

    def _kill_and_restart(self, name: str, record: FaultRecord) -> None:
        with self.stack.lock:
            record.detail["pid"] = self.stack.kill(name)
            restart = time.monotonic()
            self.stack.up()
            record.detail["restart_s"] = round(time.monotonic() - restart, 2)
            new = self.stack.record(name)
            record.detail["new_pid"] = new.pid if new else None

    def _stop_worker(self, record: FaultRecord) -> None:
        record.detail["pid"] = self.stack.signal("worker", signal.SIGSTOP)
        record.detail["stopped_s"] = self.options.stop_s
        try:
            time.sleep(self.options.stop_s)
        finally:
            self.stack.signal("worker", signal.SIGCONT)

    def _restart_redis(self, record: FaultRecord, *, empty: bool) -> None:
        redis = self.stack.redis
        with self.stack.lock:  # the monitor restarts nothing meanwhile: we see what died
            before = self.stack.live_pids()
            redis.kill()
            if empty:
                redis.wipe()
            time.sleep(self.options.redis_down_s)
            redis.start()
            record.detail["down_s"] = self.options.redis_down_s
            record.detail["empty"] = empty
            consuming = self._wait_worker_consumes(before.get("worker"))
            after = self.stack.live_pids()
            died = sorted(n for n, pid in before.items() if n != "redis" and after.get(n) != pid)
            record.detail["died"] = died
            if consuming is None and "worker" not in died:
                # Alive but not consuming (docs/reliability.md: workers can stop consuming after
                # a Redis reconnect): a finding; replace it so the rest still means something.
                record.detail["worker_not_consuming"] = True
                self.stack.kill("worker")
                died.append("worker")
            if died:
                record.ok = False
                self.stack.up()
                consuming = self._wait_worker_consumes(self.stack.live_pids().get("worker"))
            record.detail["worker_consuming_after_s"] = consuming

    def _wait_worker_consumes(self, pid: int | None) -> float | None:
        """Seconds until the worker ``pid`` ran a canary; None if it did not (or died)."""
        started = time.monotonic()
        while pid is not None and time.monotonic() - started < self.options.recover_timeout_s:
            if self.stack.live_pids().get("worker") != pid:
                return None
            try:
                checks.run_canary(self.stack.settings, timeout_s=5.0)
                return round(time.monotonic() - started, 2)
            except ChimeraError:
                time.sleep(1.0)
        return None

    # --- the LLM (through the simulator's admin API) ---------------------------------

    def _rate_limit(self, record: FaultRecord) -> None:
        # For a while rather than "the next N calls": a provider's limit lifts with
        # time, while queued 429s would wait for the breaker's one probe per cooldown.
        spec = {
            "kind": "rate_limit",
            "rate": self.options.rate_limit_rate,
            "retry_after_s": self.options.retry_after_s,
        }
        self._storm([spec], self.options.rate_limit_s, record)

    def _server_errors(self, record: FaultRecord) -> None:
        half = self.options.storm_rate / 2
        specs = [
            {"kind": "server_error", "rate": half},
            {"kind": "overloaded", "rate": half, "provider": "anthropic"},
            {"kind": "unavailable", "rate": half, "provider": "google"},
        ]
        self._storm(specs, self.options.storm_s, record)

    def _storm(self, specs: list[dict[str, Any]], seconds: float, record: FaultRecord) -> None:
        self._sim("POST", "/_sim/faults", {"faults": specs})
        try:
            time.sleep(seconds)
        finally:
            self._sim("DELETE", "/_sim/faults", None)
        record.detail.update({"faults": specs, "storm_s": seconds})

    def _permanent(self, record: FaultRecord) -> None:
        specs = [
            {"kind": "bad_request", "count": 1},
            {"kind": "safety", "count": max(1, self.options.permanent_calls - 1)},
        ]
        self._sim("POST", "/_sim/faults", {"faults": specs})
        record.detail["faults"] = specs

    def _sim(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the soak's own simulator
            self.sim_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except OSError as exc:
            raise SimulatorUnreachable(f"simulator {method} {path}: {exc}") from exc


class SimulatorUnreachable(ChimeraError):
    """Raised when the soak cannot reach the simulator's admin API."""


def sim_calls(sim_url: str) -> dict[str, Any]:
    """The simulator's call counts (``GET /_sim/calls?limit=0``)."""
    with urllib.request.urlopen(f"{sim_url}/_sim/calls?limit=0", timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer
