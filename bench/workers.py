"""A measured Celery worker process: ready when a no-op round-trips, its memory with
all its children, stopped with its whole process group, its log's problems."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

READY_DEADLINE_S = 45.0
STOP_GRACE_S = 10.0
MB = 1024 * 1024


def wait_ready(app: Celery, proc: subprocess.Popen[bytes], queue: str) -> float:
    """Seconds until a no-op round-trips through the new worker."""
    start = time.monotonic()
    probe = app.send_task("bench.noop", queue=queue)
    while time.monotonic() - start < READY_DEADLINE_S:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with status {proc.returncode} during start-up")
        with contextlib.suppress(CeleryTimeout):
            probe.get(timeout=1.0)
            return time.monotonic() - start
    probe.forget()
    raise RuntimeError(f"worker not ready after {READY_DEADLINE_S:.0f} s")


def tree_memory(pid: int) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, process count) of ``pid`` and all its descendants."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return rss / MB, pss / MB, len(procs)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's whole process group; SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also reaps stray pool children
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_S)


def log_problems(log_path: Path, limit: int = 10) -> list[str]:
    """The worker log's warning, error and traceback lines (first ``limit``)."""
    markers = ("WARNING", "ERROR", "CRITICAL", "Traceback", "Warning:")
    lines = log_path.read_text(errors="replace").splitlines()
    return [line.strip()[:300] for line in lines if any(m in line for m in markers)][:limit]
