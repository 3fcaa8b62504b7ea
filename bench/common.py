"""Shared bench helpers: statistics, free ports, processes, the simulator, a scratch environment."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
MB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank on the sorted values)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class Stats:
    """The median of repeated measurements and their spread (min and max)."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no samples")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "spread": [self.low, self.high], "n": self.n}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None, timeout_s: float
) -> None:
    """Poll ``ready`` until it answers true; raise if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up (status {proc.returncode})")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout_s:.0f}s")


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``argv`` in its own session (so it can be stopped as a group), output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15) -> None:
    """SIGTERM ``proc``'s session, SIGKILL it after ``grace_s``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc``'s session, then any descendant that left it (Ray's processes)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    stop(proc)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


class Sim:
    """``python -m llmsim`` in its own process (so it does not share our GIL), and its
    admin API."""

    def __init__(self, log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "llmsim", "--port", str(port)]
        self.proc = start_process(argv, os.environ.copy(), log)
        wait_until("the simulator", lambda: self._get("/_sim/health") is not None, self.proc, 30)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - our own simulator
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def configure(self, **config: Any) -> dict[str, Any]:
        """Change the running simulator's configuration (latency, limits); answer all of it."""
        answer: dict[str, Any] = self._post("/_sim/config", config)
        return answer

    def latency(self, seconds: float) -> None:
        """A fixed latency per call, whatever the output length."""
        self.configure(ttft_ms=seconds * 1000, ms_per_token=0)

    def reset(self) -> None:
        """Clear the call log, faults and rate-limit windows."""
        self._post("/_sim/reset", {})

    def calls(self, last: int) -> dict[str, Any]:
        """The call log: ``total``, per-status ``counts`` and the ``last`` calls."""
        answer: dict[str, Any] = self._get(f"/_sim/calls?limit={last}")
        return answer

    def close(self) -> None:
        stop(self.proc, 10)


@contextlib.contextmanager
def scratch_environment() -> Iterator[dict[str, str]]:
    """Environment for a bench run: its own database, Redis key prefix, Celery queue and
    consumer group, all removed after; the machine's shared Redis and Postgres are otherwise
    left alone."""
    tag = secrets.token_hex(4)
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/chimera_bench_{tag}",
        "CHIMERA_REDIS_KEY_PREFIX": f"chimera-bench-{tag}:",
        "CHIMERA_CELERY_QUEUE": f"chimera-bench-{tag}",
        "KAFKA_CONSUMER_GROUP_ID": f"chimera-bench-{tag}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        from chimera.db import admin
        from chimera.settings import load_settings

        settings = load_settings()
        with contextlib.suppress(Exception):
            admin.drop_database(env["DATABASE_URL"])
        delete_keys(settings, env["CHIMERA_REDIS_KEY_PREFIX"] + "*")
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def delete_keys(settings: Any, pattern: str) -> int:
    """Delete the keys matching ``pattern`` in the broker, result and state databases."""
    import redis

    deleted = 0
    for db in {settings.redis_broker_db, settings.redis_result_db, settings.redis_state_db}:
        client = redis.Redis.from_url(settings.redis_url_for(db))
        try:
            keys = list(client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(keys), 500):
                deleted += client.delete(*keys[i : i + 500])
        finally:
            client.close()
    return deleted
