"""Streaming a job's topics: ``python -m chimera jobs create`` with a file of 100,000 topics
(one title a line) beside the same command with 1,000, alternately, as processes of their own.

The command reads the file twice (checking each topic and deriving the job id, then storing
the topics a batch at a time) and publishes the job's first feed; ``CHIMERA_JOBS_FEED_BATCH``
is 1, so what is measured is the reading and storing, and no worker runs the conversation.

* **memory**: the command's peak RSS (``ru_maxrss`` of the process) with 100,000 topics ÷
  with 1,000.  Target <= 1.2x: flat, whatever the file's length.
* **rate**: topics stored per second of the command's wall time (start-up included; the
  rate net of it, from the difference of the two, is in the details).  No target.

Each job is checked afterwards: its ``job_topics`` rows are the file's topics.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from bench.common import PROJECT_ROOT, start_process
from bench.results import Outcome, Target, paired
from bench.stack import Stack

NAME = "job_stream"
SMALL, LARGE = 1_000, 100_000


def _topics_file(directory: Path, n: int) -> Path:
    path = directory / f"topics-{n}.txt"
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"Should town {i} replace its buses with trams?\n")
    return path


def _create(stack: Stack, path: Path, n: int, logs: Path) -> tuple[float, float]:
    """One ``jobs create`` of ``path``: its peak RSS in MB and its wall time in seconds."""
    from sqlalchemy import text

    name = f"bench-stream-{n}-{secrets.token_hex(3)}"
    out = logs / f"jobs-create-{name}.log"
    peak = logs / f"jobs-create-{name}.peak"
    # bench.peak: python -m chimera, writing its own peak RSS (see its docstring).
    argv = [sys.executable, "-m", "bench.peak", "jobs", "create", "--name", name]
    argv += ["--topics", str(path), "--turns", "6"]
    env = stack.env | {"CHIMERA_JOBS_FEED_BATCH": "1", "CHIMERA_BENCH_PEAK_FILE": str(peak)}
    paths = [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    t0 = time.monotonic()
    proc = start_process(argv, env, out)
    _, status, _ = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = out.read_text().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"jobs create exited with {proc.returncode}: {lines[-3:]}")
    job_id = lines[-1].strip()
    query = text("SELECT count(*) FROM job_topics WHERE job_id = :id")
    with stack.engine.connect() as conn:
        stored = int(conn.execute(query, {"id": job_id}).scalar_one())
    if stored != n:
        raise RuntimeError(f"job {job_id} stored {stored} of {n} topics")
    return int(peak.read_text()) / 1024, elapsed  # VmHWM is in KiB


def run(stack: Stack, quick: bool) -> Outcome:
    reps = 1 if quick else 2
    rss_small, rss_large, s_small, s_large = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="chimera-bench-topics-") as tmp:
        directory = Path(tmp)
        small, large = _topics_file(directory, SMALL), _topics_file(directory, LARGE)
        _create(stack, small, SMALL, stack.logs)  # warm-up: imports, page cache
        for _ in range(reps):
            rss, seconds = _create(stack, small, SMALL, stack.logs)
            rss_small.append(rss)
            s_small.append(seconds)
            rss, seconds = _create(stack, large, LARGE, stack.logs)
            rss_large.append(rss)
            s_large.append(seconds)
    net = [(LARGE - SMALL) / max(b - a, 1e-3) for a, b in zip(s_small, s_large, strict=True)]
    return Outcome(
        [
            paired(
                NAME,
                f"peak RSS of jobs create, {LARGE:,} topics",
                "MB",
                rss_large,
                baseline=(f"{SMALL:,} topics", "MB", rss_small),
                target=Target("<=", 1.2),
            ),
            paired(
                NAME,
                f"topics/s, {LARGE:,} topics",
                "topics/s",
                [LARGE / s for s in s_large],
                baseline=(f"{SMALL:,} topics", "topics/s", [SMALL / s for s in s_small]),
                target=None,
                details={
                    "seconds_large": s_large,
                    "seconds_small": s_small,
                    "topics_per_s_net_of_start_up": net,
                },
            ),
        ],
        reps,
    )
