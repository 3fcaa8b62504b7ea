"""Which Celery pool should Chimera's LLM workers use?

For each scenario (prefork x2, threads x8, threads x64, gevent x256) this starts a
fresh ``celery -A tasks.worker worker`` subprocess with ``bench.pool_tasks`` included
and measures:

* the round trip of a no-op task: 200 sequential ``send_task(...).get()`` (median, p90);
* the throughput of 200 ms I/O tasks (``time.sleep`` stands in for an LLM HTTP call):
  N = 8 x concurrency tasks (capped) are submitted at once and awaited; achieved
  tasks/s is compared with the ideal concurrency / 0.2 s;
* the worker's process-tree memory (psutil, parent + children): RSS when idle after
  the no-op warm-up and again when idle after the I/O burst (every thread, greenlet or
  child has been used by then), plus PSS (shared pages counted once) for the latter.

Everything lives under a unique Redis key prefix (``bench-pool-<hex>:``) and a queue
per scenario; the keys are deleted and each worker's process group is killed at the end,
even on error.  gevent is measured only if it is importable in this interpreter.

Run from the repository root (takes about 1-2 minutes):

    cd /work/main && PYTHONPATH=. .venv/bin/python bench/pool_choice.py

Writes ``bench/pool_results.json`` and prints a Markdown table.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from bench.workers import log_problems, stop_worker, tree_memory, wait_ready

REPO = Path(__file__).resolve().parents[1]
RESULTS_PATH = REPO / "bench" / "pool_results.json"
RUN_ID = secrets.token_hex(4)
KEY_PREFIX = f"bench-pool-{RUN_ID}:"

NOOP_ROUNDS = 200
NOOP_WARMUP = 20
IO_SECONDS = 0.2
IO_WAVES = 8  # N = IO_WAVES x concurrency: ideally IO_WAVES x IO_SECONDS = 1.6 s
IO_MAX_TASKS = 2048
IO_DEADLINE_S = 20.0
SETTLE_S = 1.0


@dataclass(frozen=True)
class Scenario:
    pool: str
    concurrency: int
    # Broker (kombu Redis) connection-pool size; None keeps the configured default (10).
    broker_max_connections: int | None = None

    @property
    def label(self) -> str:
        extra = f"-maxconn{self.broker_max_connections}" if self.broker_max_connections else ""
        return f"{self.pool}-{self.concurrency}{extra}"


SCENARIOS = (
    Scenario("prefork", 2),
    Scenario("threads", 8),
    Scenario("threads", 64),
    Scenario("gevent", 256),
    # Extra: gevent acks from every greenlet, so it needs more than kombu's 10 connections.
    Scenario("gevent", 256, broker_max_connections=300),
)


@dataclass
class IoResult:
    tasks: int
    completed: int
    elapsed_s: float
    tasks_per_s: float
    ideal_tasks_per_s: float
    achieved_over_ideal: float
    worker_side_tasks_per_s: float  # up to the last task's own end time


@dataclass
class Outcome:
    pool: str
    concurrency: int
    broker_max_connections: int | None
    status: str  # "ok", "not installed" or "error: ..."
    startup_s: float | None = None
    noop_ms: dict[str, float] = field(default_factory=dict)
    io: IoResult | None = None
    idle_rss_warm_mb: float | None = None
    idle_rss_after_load_mb: float | None = None
    idle_pss_after_load_mb: float | None = None
    processes: int | None = None
    log_problems: list[str] = field(default_factory=list)


# --- Client side --------------------------------------------------------------------------


def configure_env() -> None:
    """Point this process (and, by inheritance, the workers) at our own Redis prefix."""
    os.environ["CHIMERA_REDIS_KEY_PREFIX"] = KEY_PREFIX
    os.environ["CHIMERA_CELERY_QUEUE"] = f"bench-pool-{RUN_ID}"
    path = os.environ.get("PYTHONPATH", "")
    if str(REPO) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), path) if p)


def make_client_app() -> Celery:
    """The Chimera Celery app; imported only now, after the environment is set."""
    return importlib.import_module("tasks.app").create_app()


def queue_for(scenario: Scenario) -> str:
    return f"bench-pool-{RUN_ID}-{scenario.label}"


def broker_options_override(max_connections: int) -> str:
    """A ``celery worker -- key=value`` override: the configured options plus a pool size."""
    options = dict(importlib.import_module("celeryconfig").broker_transport_options)
    options["max_connections"] = max_connections
    return f"broker_transport_options=(json){json.dumps(options)}"


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def measure_noop(app: Celery, queue: str) -> dict[str, float]:
    """Sequential no-op round trips in milliseconds."""
    for _ in range(NOOP_WARMUP):
        app.send_task("bench.noop", queue=queue).get(timeout=10)
    samples: list[float] = []
    for _ in range(NOOP_ROUNDS):
        start = time.perf_counter()
        app.send_task("bench.noop", queue=queue).get(timeout=10)
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "n": len(samples),
        "median": statistics.median(samples),
        "p90": percentile(samples, 90),
        "mean": statistics.fmean(samples),
        "max": max(samples),
    }


def submit_io(app: Celery, queue: str, count: int) -> list[AsyncResult]:
    with app.producer_or_acquire() as producer:
        return [
            app.send_task("bench.io_sleep", args=(IO_SECONDS,), queue=queue, producer=producer)
            for _ in range(count)
        ]


def collect_io(results: list[AsyncResult], deadline: float) -> list[float]:
    """End times of the tasks that finished before ``deadline`` (a monotonic time)."""
    ends: list[float] = []
    for result in results:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(CeleryTimeout):
                ends.append(float(result.get(timeout=remaining)))
                continue
        result.forget()  # stop waiting on it (else its __del__ runs at interpreter exit)
    return ends


def measure_io(app: Celery, scenario: Scenario) -> IoResult:
    """Submit N I/O tasks at once; achieved tasks/s against concurrency / IO_SECONDS."""
    count = min(IO_WAVES * scenario.concurrency, IO_MAX_TASKS)
    ideal = scenario.concurrency / IO_SECONDS
    wall_start = time.time()
    start = time.monotonic()
    results = submit_io(app, queue_for(scenario), count)
    ends = collect_io(results, start + IO_DEADLINE_S)
    elapsed = time.monotonic() - start
    achieved = len(ends) / elapsed
    worker_span = (max(ends) - wall_start) if ends else float("inf")
    return IoResult(
        tasks=count,
        completed=len(ends),
        elapsed_s=elapsed,
        tasks_per_s=achieved,
        ideal_tasks_per_s=ideal,
        achieved_over_ideal=achieved / ideal,
        worker_side_tasks_per_s=len(ends) / worker_span,
    )


# --- Worker side ----------------------------------------------------------------------------


def start_worker(scenario: Scenario, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHIMERA_CELERY_QUEUE": queue_for(scenario),
        "CHIMERA_CELERY_POOL": scenario.pool,
        "CHIMERA_CELERY_CONCURRENCY": str(scenario.concurrency),
    }
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks.worker", "worker",
        "-I", "bench.pool_tasks",
        "--pool", scenario.pool, "--concurrency", str(scenario.concurrency),
        "-n", f"bench-{scenario.label}-{RUN_ID}@%h",
        "--loglevel", "WARNING", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if scenario.broker_max_connections:
        argv += ["--", broker_options_override(scenario.broker_max_connections)]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


# --- One scenario ----------------------------------------------------------------------------


def outcome_for(scenario: Scenario, status: str) -> Outcome:
    return Outcome(scenario.pool, scenario.concurrency, scenario.broker_max_connections, status)


def pool_available(pool: str) -> bool:
    return pool != "gevent" or importlib.util.find_spec("gevent") is not None


def measure_worker(app: Celery, scenario: Scenario, proc: subprocess.Popen[bytes]) -> Outcome:
    queue = queue_for(scenario)
    outcome = outcome_for(scenario, "ok")
    outcome.startup_s = wait_ready(app, proc, queue)
    outcome.noop_ms = measure_noop(app, queue)
    time.sleep(SETTLE_S)
    outcome.idle_rss_warm_mb, _, _ = tree_memory(proc.pid)
    outcome.io = measure_io(app, scenario)
    time.sleep(SETTLE_S)
    rss, pss, count = tree_memory(proc.pid)
    outcome.idle_rss_after_load_mb, outcome.idle_pss_after_load_mb = rss, pss
    outcome.processes = count
    return outcome


def run_scenario(app: Celery, scenario: Scenario, log_dir: Path) -> Outcome:
    if not pool_available(scenario.pool):
        return outcome_for(scenario, "not installed")
    log_path = log_dir / f"{scenario.label}.log"
    print(f"-- {scenario.label}: starting worker (log: {log_path})", flush=True)
    proc = start_worker(scenario, log_path)
    try:
        outcome = measure_worker(app, scenario, proc)
    except Exception as exc:
        outcome = outcome_for(scenario, f"error: {exc!r}"[:300])
    finally:
        stop_worker(proc)
    outcome.log_problems = log_problems(log_path)
    return outcome


# --- Clean-up and report ------------------------------------------------------------------------


def delete_prefixed_keys() -> int:
    """Delete every key under KEY_PREFIX in the broker, result and state databases."""
    settings = importlib.import_module("chimera.settings").get_settings()
    databases = {settings.redis_broker_db, settings.redis_result_db, settings.redis_state_db}
    deleted = 0
    for db in sorted(databases):
        client = redis.Redis.from_url(settings.redis_url_for(db))
        try:
            keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
            for start in range(0, len(keys), 500):
                deleted += client.delete(*keys[start : start + 500])
        finally:
            client.close()
    return deleted


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def table_row(o: Outcome) -> str:
    pool = o.pool
    if o.broker_max_connections:
        pool += f" (broker max_connections={o.broker_max_connections})"
    if o.status != "ok":
        return f"| {pool} | {o.concurrency} | {o.status} | | | | |"
    io = o.io
    ratio = "—" if io is None else f"{io.achieved_over_ideal:.2f}"
    if io is not None and io.completed < io.tasks:
        ratio += f" ({io.completed}/{io.tasks} done)"
    return (
        f"| {pool} | {o.concurrency} | {fmt(o.noop_ms.get('median'))} "
        f"| {fmt(o.noop_ms.get('p90'))} | {ratio} | {fmt(io.tasks_per_s if io else None)} "
        f"| {fmt(o.idle_rss_after_load_mb, '.0f')} |"
    )


def markdown_table(outcomes: list[Outcome]) -> str:
    header = (
        "| pool | concurrency | noop median ms | noop p90 ms | I/O achieved/ideal "
        "| tasks/s | idle RSS MB |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    return "\n".join([header, *(table_row(o) for o in outcomes)])


def run_info(started: float) -> dict[str, Any]:
    gevent = importlib.util.find_spec("gevent")
    return {
        "started_at": started,
        "duration_s": time.time() - started,
        "key_prefix": KEY_PREFIX,
        "python": platform.python_version(),
        "celery": importlib.import_module("celery").__version__,
        "gevent": importlib.import_module("gevent").__version__ if gevent else None,
        "cpus": os.cpu_count(),
        "loadavg_end": os.getloadavg(),
        "noop_rounds": NOOP_ROUNDS,
        "io_task_seconds": IO_SECONDS,
        "io_waves": IO_WAVES,
        "io_max_tasks": IO_MAX_TASKS,
        "worker_flags": "--without-mingle --without-gossip --loglevel WARNING",
    }


def main() -> int:
    started = time.time()
    configure_env()
    outcomes: list[Outcome] = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    print(f"prefix {KEY_PREFIX}  loadavg {os.getloadavg()}", flush=True)
    app = make_client_app()
    try:
        for scenario in SCENARIOS:
            outcomes.append(run_scenario(app, scenario, log_dir))
    finally:
        app.close()
        print(f"deleted {delete_prefixed_keys()} Redis keys under {KEY_PREFIX}", flush=True)
    report = {"run": run_info(started), "scenarios": [asdict(o) for o in outcomes]}
    RESULTS_PATH.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS_PATH.relative_to(REPO)}; worker logs in {log_dir}\n")
    print(markdown_table(outcomes))
    return 0 if all(o.status in ("ok", "not installed") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
