"""The soak's own world: state dir, ports, database, key prefix, queue and Redis server.

Everything a soak touches is its own, so it may kill and wipe it: a private
``redis-server`` on a free port (the machine's Redis is never restarted), a
database of its own on the machine's Postgres, its own Kafka broker, simulator,
web and Flower ports.  Provider keys and base URLs are removed from the
environment: a soak always talks to the simulator, never to a paid API.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy.engine import make_url

from chimera import stack
from chimera.errors import StackError
from chimera.settings import Settings, load_settings
from chimera.stack import procs
from chimera.stack.control import COMPONENTS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = PROJECT_ROOT / ".chimera" / "soak"
DATABASE = "chimera_soak"
KEY_PREFIX = "chimera-soak:"
QUEUE = "chimera-soak"

#: Never inherited: the soak must not reach a real provider or another Redis.
DROPPED = (
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "OPENAI_BASE_URL",
    "REDIS_URL",
    "REDIS_PASSWORD",
)

#: Soak defaults for knobs the caller may still set in the environment.  The
#: reconciler runs sooner than in production so that work lost to a fault is
#: re-driven within the run; the limiter is out of the way (faults, not limits,
#: are under test).
TUNABLES = {
    "CHIMERA_RECONCILE_AFTER_S": "60",
    "CHIMERA_RECONCILE_INTERVAL_S": "15",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
}


@dataclass(frozen=True)
class Ports:
    redis: int
    kafka: int
    sim: int
    http: int
    flower: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports() -> Ports:
    chosen: set[int] = set()
    while len(chosen) < 5:
        chosen.add(free_port())
    return Ports(*sorted(chosen))


def soak_database_url(base: str) -> str:
    """The machine's Postgres (as ``base`` names it), database ``chimera_soak``."""
    return make_url(base).set(database=DATABASE).render_as_string(hide_password=False)


def apply_environment(
    state_dir: Path, ports: Ports, *, sim_ttft_ms: float, sim_ms_per_token: float
) -> Settings:
    """Point this process (and so every child the stack starts) at the soak's world."""
    base_url = load_settings().database_url.get_secret_value()
    for name in DROPPED:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "CHIMERA_STATE_DIR": str(state_dir),
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(ports.redis),
            "CHIMERA_REDIS_KEY_PREFIX": KEY_PREFIX,
            "CHIMERA_CELERY_QUEUE": QUEUE,
            "DATABASE_URL": soak_database_url(base_url),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports.kafka}",
            "KAFKA_CONSUMER_GROUP_ID": "chimera-soak",
            "CHIMERA_SIM_HOST": "127.0.0.1",
            "CHIMERA_SIM_PORT": str(ports.sim),
            "CHIMERA_SIM_TTFT_MS": str(sim_ttft_ms),
            "CHIMERA_SIM_MS_PER_TOKEN": str(sim_ms_per_token),
            "CHIMERA_HTTP_HOST": "127.0.0.1",
            "CHIMERA_HTTP_PORT": str(ports.http),
            "CHIMERA_FLOWER_HOST": "127.0.0.1",
            "CHIMERA_FLOWER_PORT": str(ports.flower),
        }
    )
    for name, value in TUNABLES.items():
        os.environ.setdefault(name, value)
    return load_settings()


class PrivateRedis:
    """A ``redis-server`` of the soak's own (AOF on, like production), restartable."""

    NAME = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.redis_port
        self.data_dir = settings.state_dir / "redis"
        self.log_path = settings.log_dir / "redis.log"

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server is not installed (apt-get install redis-server)")
        return [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
        ]

    def record(self) -> procs.ProcessRecord | None:
        return procs.read_record(self.settings.run_dir, self.NAME)

    def start(self) -> procs.ProcessRecord:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = procs.spawn(
            self.NAME,
            self.argv(),
            run_dir=self.settings.run_dir,
            log_path=self.log_path,
            env=dict(os.environ),
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if client.ping():
                        return record
                except redis.RedisError:
                    pass
                if not record.is_alive() or time.monotonic() > deadline:
                    raise StackError(f"the soak's redis-server did not start; see {self.log_path}")
                time.sleep(0.1)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would (the AOF keeps what was acknowledged)."""
        record = self.record()
        if record is None or not record.is_alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while record.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def wipe(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop(self) -> None:
        record = self.record()
        if record is not None:
            procs.stop(record, run_dir=self.settings.run_dir, timeout_s=10)


class SoakStack:
    """The local stack (``chimera.stack``) plus the private Redis, with one lock, so a
    fault and the monitor never restart a component at the same time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = PrivateRedis(settings)
        self.lock = threading.RLock()

    def up(self) -> list[str]:
        """Start what is not running (the stack's own ``up``); its lines."""
        lines: list[str] = []
        with self.lock:
            stack.up(self.settings, echo=lines.append)
        return lines

    def down(self) -> list[str]:
        lines: list[str] = []
        with self.lock:
            self.resume_all()
            stack.down(self.settings, echo=lines.append)
            self.redis.stop()
        return lines

    def record(self, name: str) -> procs.ProcessRecord | None:
        if name == PrivateRedis.NAME:
            return self.redis.record()
        return procs.read_record(self.settings.run_dir, name)

    def live_pids(self) -> dict[str, int]:
        """Component -> pid of every recorded process that runs."""
        out = {}
        for name in (*COMPONENTS, PrivateRedis.NAME):
            record = self.record(name)
            if record is not None and record.is_alive():
                out[name] = record.pid
        return out

    def signal(self, name: str, sig: signal.Signals) -> int:
        """Send ``sig`` to a component's process group; its pid."""
        record = self.record(name)
        if record is None or not record.is_alive():
            raise StackError(f"{name} is not running")
        os.killpg(record.pid, sig)
        return record.pid

    def kill(self, name: str) -> int:
        """SIGKILL a component and wait until it is gone; its pid."""
        with self.lock:
            pid = self.signal(name, signal.SIGKILL)
            record = self.record(name)
            deadline = time.monotonic() + 10
            while record is not None and record.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        return pid

    def resume_all(self) -> None:
        """SIGCONT every component (a stopped one cannot be stopped cleanly)."""
        for name in self.live_pids():
            with contextlib.suppress(StackError, ProcessLookupError):
                self.signal(name, signal.SIGCONT)
