"""Shared bench helpers: results file, percentiles, a scratch database, the simulator."""

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results.json"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
    }


def write_result(name: str, result: dict[str, Any]) -> None:
    """Merge one scenario's result into bench/results.json."""
    data: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(RESULTS.read_text())
    data[name] = result | {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator(*args: str) -> Iterator[str]:
    """`python -m chimera sim` in its own process (so it does not share our GIL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chimera", "sim", "--port", str(port), *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_sim/health", timeout=1):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@contextlib.contextmanager
def scratch_environment() -> Iterator[dict[str, str]]:
    """Environment for a bench run: its own database and Redis key prefix, removed after."""
    tag = secrets.token_hex(4)
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/chimera_bench_{tag}",
        "CHIMERA_REDIS_KEY_PREFIX": f"chimera-bench-{tag}:",
        "CHIMERA_CELERY_QUEUE": f"chimera-bench-{tag}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        from chimera.db import admin
        from chimera.settings import load_settings

        settings = load_settings()
        admin.drop_database(env["DATABASE_URL"])
        import redis

        for db in {settings.redis_broker_db, settings.redis_result_db, settings.redis_state_db}:
            client = redis.Redis.from_url(settings.redis_url_for(db))
            keys = list(client.scan_iter(match=env["CHIMERA_REDIS_KEY_PREFIX"] + "*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
