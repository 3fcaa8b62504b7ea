"""Supervising detached OS processes through pid records in the run directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from chimera.errors import StackError


@dataclass(frozen=True)
class ProcessRecord:
    """What we know of a process we started (saved as ``<run_dir>/<name>.json``)."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log_path: str
    url: str = ""

    def is_alive(self) -> bool:
        """True if the pid still runs *and* is the process we started (no pid reuse)."""
        try:
            proc = psutil.Process(self.pid)
            return bool(
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and abs(proc.create_time() - self.create_time) < 1.0
            )
        except psutil.Error:
            return False


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def read_record(run_dir: Path, name: str) -> ProcessRecord | None:
    path = record_path(run_dir, name)
    try:
        return ProcessRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StackError(f"unreadable pid record {path}: {exc}; delete it") from exc


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    run_dir: Path,
    log_path: Path,
    env: Mapping[str, str],
    url: str = "",
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` detached (own session), logging to ``log_path``; record its pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start {name}: {exc}") from exc
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = time.time()
    record = ProcessRecord(name, proc.pid, created, list(argv), str(log_path), url)
    record_path(run_dir, name).write_text(json.dumps(asdict(record)))
    return record


def stop(record: ProcessRecord, *, run_dir: Path, timeout_s: float) -> bool:
    """SIGTERM the process group, SIGKILL it after ``timeout_s``; True if it was running."""
    was_alive = record.is_alive()
    if was_alive:
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while record.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if record.is_alive():
            _signal_group(record.pid, signal.SIGKILL)
            _wait_gone(record, 5.0)
    # Children that outlived their leader (e.g. prefork pool) share its group.
    _signal_group(record.pid, signal.SIGKILL)
    record_path(run_dir, record.name).unlink(missing_ok=True)
    return was_alive


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # we start each process as its own group leader


def _wait_gone(record: ProcessRecord, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while record.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def log_contains(path: Path, needle: str, *, after_offset: int = 0) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(after_offset)
            return needle.encode() in fh.read()
    except FileNotFoundError:
        return False


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
