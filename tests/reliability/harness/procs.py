"""Chimera's own processes (worker, beat, bridge) as OS processes a test can signal.

Each runs in its own session, so a signal to its group reaches every child, and
its settings come from the environment exactly as in production (``to_env``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from chimera.settings import Settings, to_env

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def process_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test session's environment with ``settings`` (and ``extra``) in place of ours."""
    ours = ("CHIMERA_", "KAFKA_", "REDIS_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return env | to_env(settings) | dict(extra or {})


class ManagedProcess:
    """One OS process (and its group): signals, liveness and memory."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=dict(env),
                start_new_session=True,
            )
        self.paused = False
        #: Killed or stopped on purpose by the test: not expected alive at the end.
        self.killed = False
        self.rss_samples: list[float] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"{self.name} exited ({self.proc.returncode}):\n{self.log()[-4000:]}"

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group (nothing runs its shutdown hooks)."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)
        self.paused = False
        self.killed = True

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers."""
        if not self.alive():
            return
        if self.paused:
            self.resume()
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.killed = True  # ended on purpose: not expected alive any more

    def rss_mib(self) -> float:
        """Resident memory of the process and its children, in MiB (sampled and kept)."""
        try:
            root = psutil.Process(self.pid)
            total = root.memory_info().rss + sum(
                c.memory_info().rss for c in root.children(recursive=True)
            )
        except psutil.Error:
            return float("nan")
        mib = total / 2**20
        self.rss_samples.append(mib)
        return mib

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def worker_argv(hostname: str, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker"]
    return [*argv, "--loglevel", "INFO", "--hostname", hostname, *extra]


def beat_argv(schedule: Path) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "beat"]
    return [*argv, "--loglevel", "INFO", "--schedule", str(schedule)]


def bridge_argv() -> list[str]:
    return [sys.executable, "-m", "bridges"]
