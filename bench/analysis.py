"""Analysis latency: the Kafka path (event to run row) and the synchronous endpoint.

Every figure is a ratio to a baseline from the same run (PERF-FACTS: the machine is
shared), the median of several runs with its spread (min, max), at a simulated LLM
latency L = 1 s (``ttft_ms=1000, ms_per_token=0``: fixed, whatever the output length):

1. **Kafka to row**: an ``analysis.tasks`` event produced to Kafka, with ``python -m bridges``
   running, until its ``analysis_runs`` row exists: latency / L, target <= 1.2 (the four
   analyses run in parallel).  The overhead (latency - L) is set beside a bare Celery chord
   of four ``bench.noop`` + a ``bench.collect`` callback on the same worker and broker.  The
   same run timed from the hand-off (inbox row and hand-off task sent by the bench, no
   bridge) isolates the bridge's share, and each run is split into phases from the
   timestamps the stack leaves behind (inbox row, the simulator's call log, the run row).
2. **Synchronous endpoint**: ``POST /orchestrator/analyze`` over HTTP to gunicorn serving
   ``web:create_app()`` as production does: latency / L, target <= 1.1, on the thread pool
   and on Ray.  Warm-up calls are excluded; the first call (which on Ray starts a local
   Ray) is reported apart.  The Ray server runs one gunicorn worker: each worker process
   would start a local Ray of its own.

Both are also set beside the floor of the simulator and the SDK: the same four requests
sent straight through the ``anthropic`` SDK on four threads.  ``--ray-logical-cpus N``
adds a Ray run with N logical CPUs (``RAY_OVERRIDE_RESOURCES``), to tell the executor's
own overhead from waiting for CPU slots.

Runs its own simulator, Kafka broker, worker, bridge, web servers, database and Redis key
prefix, and removes them afterwards.

    PYTHONPATH=. .venv/bin/python bench/analysis.py [--samples 6] [--chords 20] [--no-ray]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import PROJECT_ROOT, free_port, scratch_environment, simulator, write_result
from bench.conversation import start_worker, stop

#: The simulated latency of every LLM call.
L_MS = 1000.0
KAFKA_TARGET = 1.2
ENDPOINT_TARGET = 1.1
SEGMENTS = [
    {"speaker": "Ana", "text": "Cars make cities loud. Everyone knows bans always work."},
    {"speaker": "Ben", "text": "A ban would hurt shops. Ana only says that because she cycles."},
    {"speaker": "Ana", "text": "Shops did well on every pedestrian street I have seen."},
]


# --- helpers ------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "spread": [min(values), max(values)]}


def configure_sim(url: str, **config: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - our own simulator
        f"{url}/_sim/config",
        data=json.dumps(config).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - our own simulator
        pass


def sim_calls(url: str, last: int) -> tuple[int, list[float]]:
    """The simulator's call count, and when it had each of its ``last`` calls (Unix time,
    taken before it waits out its latency)."""
    with urllib.request.urlopen(f"{url}/_sim/calls?limit={last}", timeout=5) as response:  # noqa: S310
        answer = json.loads(response.read())
    return int(answer["total"]), [float(c["ts"]) for c in answer["calls"]]


class BareFanout:
    """The four analyses' requests sent straight through the ``anthropic`` SDK on four
    threads: what the simulator and the SDK cost without Chimera.  Sampled between the
    runs of each figure, so that it sees the same machine they do."""

    def __init__(self, sim_url: str) -> None:
        import anthropic

        from chimera.analysis.prompts import PROMPTS
        from chimera.settings import load_settings

        settings = load_settings()
        self._client = anthropic.Anthropic(api_key="bench", base_url=sim_url, max_retries=0)
        self._model = settings.analysis_model
        self._max_tokens = settings.analysis_max_output_tokens
        self._text = "The text to analyse:\n\n" + "\n\n".join(
            f"{s['speaker']}: {s['text']}" for s in SEGMENTS
        )
        self._specs = [p for p in PROMPTS.values() if p.id.endswith(".v1")]
        self._pool = ThreadPoolExecutor(max_workers=len(self._specs))
        self.sample()  # warm up

    def _call(self, spec: Any) -> None:
        name = spec.schema.__name__
        self._client.messages.create(
            model=self._model,
            max_tokens=self._max_tokens,
            system=spec.system("en"),
            messages=[{"role": "user", "content": self._text}],
            tools=[{"name": name, "input_schema": spec.schema.model_json_schema()}],
            tool_choice={"type": "tool", "name": name},
        )

    def sample(self) -> float:
        """Milliseconds for the four, in parallel."""
        t0 = time.perf_counter()
        list(self._pool.map(self._call, self._specs))
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self._pool.shutdown()
        self._client.close()


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


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


def wait_until(what: str, ready: Any, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout_s:.0f}s")


# --- figure 1: Kafka to row -----------------------------------------------------------------


class Pipeline:
    """The bench's Kafka path: broker, one worker, the bridge, and the clients the bench uses."""

    def __init__(
        self, logs: Path, concurrency: int, sim_url: str, stack: contextlib.ExitStack
    ) -> None:
        from chimera.db import admin
        from chimera.db.engine import make_engine
        from chimera.inbox import Inbox
        from chimera.kafka import broker
        from chimera.kafka.clients import make_producer
        from chimera.kafka.topics import ensure_topics
        from chimera.settings import load_settings
        from tasks.app import create_app

        self.settings = settings = load_settings()
        self.sim_url = sim_url
        admin.upgrade(settings)
        port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
        kafka = broker.start_broker("127.0.0.1", port, logs / "kafka.log")
        stack.callback(_terminate, kafka)
        broker.wait_until_ready(settings, 30, kafka)
        ensure_topics(settings)
        worker = start_worker(os.environ.copy(), concurrency, logs / "worker.log")
        stack.callback(stop, worker)
        self.bridge = start_process(
            [sys.executable, "-m", "bridges"], os.environ.copy(), logs / "bridge.log"
        )
        stack.callback(stop, self.bridge)
        self.app = create_app()
        stack.callback(self.app.close)
        self.engine = make_engine(settings)
        stack.callback(self.engine.dispose)
        self.inbox = Inbox(self.engine)
        self.producer = make_producer(settings)
        stack.callback(self.producer.close, timeout=10)
        wait_until("the worker", self._worker_answers, worker, 60)

    def _worker_answers(self) -> bool:
        result = self.app.send_task("bench.noop")
        try:
            result.get(timeout=2)
        finally:
            result.forget()  # a result that timed out would stay pending until exit
        return True

    def event(self) -> dict[str, Any]:
        return {
            "event_id": f"bench-{uuid.uuid4().hex}",
            "context_id": f"bench-doc-{uuid.uuid4().hex[:12]}",
            "segments": SEGMENTS,
        }

    def run(self, *, via_bridge: bool, latency_ms: float, timeout_s: float = 30) -> dict[str, Any]:
        """One analysis, entered through Kafka (or handed off by the bench), until its row
        exists; its latency and phases in ms.  Its row cannot exist before the simulated
        ``latency_ms`` has passed: polling for it starts just before, to keep the bench's
        own load off the two cores meanwhile."""
        from chimera.codec import payload_hash
        from chimera.ids import run_id
        from tasks.handoff import send_handoff

        event = self.event()
        rid = run_id(event["event_id"])
        calls_before, _ = sim_calls(self.sim_url, 0)
        wall0 = time.time()
        t0 = time.perf_counter()
        if via_bridge:
            topic = self.settings.topic_analysis_tasks
            value = json.dumps(event).encode()
            self.producer.send(topic, key=event["context_id"].encode(), value=value).get(10)
        else:
            self.inbox.accept(
                event_id=event["event_id"],
                kind="analysis",
                payload=event,
                payload_hash=payload_hash(event),
            )
            send_handoff(self.app, "analysis", event["event_id"])
        time.sleep(max(0.0, t0 + 0.9 * latency_ms / 1000 - time.perf_counter()))
        seen = self._wait_row(rid, timeout_s) - t0
        return {"latency_ms": seen * 1000} | self._phases(
            rid, wall0, wall0 + seen, calls_before, latency_ms
        )

    def _wait_row(self, rid: str, timeout_s: float) -> float:
        from sqlalchemy import text

        query = text("SELECT 1 FROM analysis_runs WHERE id = :id")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                if conn.execute(query, {"id": rid}).first() is not None:
                    return time.perf_counter()
            time.sleep(0.005)
        raise RuntimeError(f"no analysis_runs row {rid} after {timeout_s:.0f}s")

    def _phases(
        self, rid: str, wall0: float, seen: float, calls_before: int, latency_ms: float
    ) -> dict[str, Any]:
        """Where the time went, from the inbox row, the simulator's call log and the run row
        (``created_at`` and ``completed_at``: the start of the transaction that wrote them)."""
        from sqlalchemy import text

        query = text(
            "SELECT e.created_at AS inbox_at, r.completed_at AS row_at, r.status "
            "FROM analysis_runs r JOIN events e ON e.event_id = r.event_id WHERE r.id = :id"
        )
        with self.engine.connect() as conn:
            row = conn.execute(query, {"id": rid}).one()
        total, calls = sim_calls(self.sim_url, 4)
        inbox_at, row_at = row.inbox_at.timestamp(), row.row_at.timestamp()
        first, last = min(calls), max(calls)
        return {
            "status": row.status,
            "llm_calls": total - calls_before,
            "phases_ms": {
                # the bridge: fetch, decode, inbox insert
                "to_inbox_row": (inbox_at - wall0) * 1000,
                # hand-off, the start task, the chord's dispatch, each part up to its call
                "inbox_row_to_first_call": (first - inbox_at) * 1000,
                "call_start_skew": (last - first) * 1000,
                "llm_call": latency_ms,
                # the answer, the part's result, the chord's callback up to its insert
                "last_call_end_to_row_insert": (row_at - last) * 1000 - latency_ms,
                # analysis.completed published and acknowledged, the commit, the bench's poll
                "row_insert_to_seen": (seen - row_at) * 1000,
            },
        }


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bare_chords(app: Any, n: int) -> list[float]:
    """Seconds per chord of four ``bench.noop`` and a ``bench.collect`` callback."""
    from celery import chord

    noop = app.signature("bench.noop", immutable=True)
    collect = app.signature("bench.collect")
    samples = []
    for i in range(n + 3):  # three to warm up
        t0 = time.perf_counter()
        result = chord([noop.clone() for _ in range(4)])(collect.clone())
        counted = result.get(timeout=30)
        elapsed = time.perf_counter() - t0
        result.forget()  # with its header's results, which would stay pending until exit
        if counted != 4:
            raise RuntimeError(f"the chord callback saw {counted} results, not 4")
        if i >= 3:
            samples.append(elapsed)
    return samples


def measure_kafka(p: Pipeline, samples: int, chords: int, bare: BareFanout) -> dict[str, Any]:
    # Warm-up (excluded): the bridge joining its group, the worker's first analysis.
    configure_sim(p.sim_url, ttft_ms=0, ms_per_token=0)
    p.run(via_bridge=True, latency_ms=0, timeout_s=90)
    p.run(via_bridge=False, latency_ms=0)
    configure_sim(p.sim_url, ttft_ms=L_MS, ms_per_token=0)
    runs: dict[str, list[dict[str, Any]]] = {"kafka": [], "handoff": []}
    fanout_ms = []
    for _ in range(samples):  # interleaved, so that drift in the machine's load hits all three
        runs["kafka"].append(p.run(via_bridge=True, latency_ms=L_MS))
        fanout_ms.append(bare.sample())
        runs["handoff"].append(p.run(via_bridge=False, latency_ms=L_MS))
    fanout = statistics.median(fanout_ms)
    chord_ms = [s * 1000 for s in bare_chords(p.app, chords)]
    chord_median = statistics.median(chord_ms)

    def figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
        latency = [r["latency_ms"] for r in rows]
        overhead = [x - L_MS for x in latency]
        phases = {
            k: statistics.median(r["phases_ms"][k] for r in rows) for k in rows[0]["phases_ms"]
        }
        statuses = sorted({r["status"] for r in rows})
        return {
            "ratio_to_bare_fanout": statistics.median(latency) / fanout,
            "latency_ms": spread(latency),
            "ratio": spread([x / L_MS for x in latency]),
            "overhead_ms": spread(overhead),
            "overhead_vs_bare_chord": statistics.median(overhead) / chord_median,
            "phases_ms_median": phases,
            "run_statuses": statuses,
            "llm_calls_per_run": sorted({r["llm_calls"] for r in rows}),
        }

    kafka, handoff = figure(runs["kafka"]), figure(runs["handoff"])
    ratio = kafka["ratio"]["median"]
    return {
        "simulated_latency_ms": L_MS,
        "samples": samples,
        "warmup_runs_excluded": 1,
        **kafka,
        "from_handoff": handoff,
        "bare_chord_ms": spread(chord_ms) | {"n": chords},
        "bare_fanout_ms": spread(fanout_ms),
        "target": KAFKA_TARGET,
        "pass": ratio <= KAFKA_TARGET
        and kafka["run_statuses"] == ["ok"]
        and kafka["llm_calls_per_run"] == [4],
    }


# --- figure 2: the synchronous endpoint -----------------------------------------------------


@contextlib.contextmanager
def web_app(
    logs: Path, executor: str, workers: int | None, extra_env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """gunicorn serving ``web:create_app()`` with the bench's environment, on a free port."""
    from chimera.settings import load_settings
    from chimera.stack.web import gunicorn_argv

    port = free_port()
    env = (
        os.environ
        | {
            "CHIMERA_HTTP_HOST": "127.0.0.1",
            "CHIMERA_HTTP_PORT": str(port),
            "CHIMERA_ANALYZE_EXECUTOR": executor,
            "CHIMERA_LOG_LEVEL": "WARNING",
        }
        | extra_env
    )
    if workers is not None:
        env["CHIMERA_HTTP_WORKERS"] = str(workers)
    ray_dir = None
    if executor == "ray":
        ray_dir = tempfile.mkdtemp(prefix="cb-ray-")  # short: Ray's socket paths are limited
        env |= {"RAY_TMPDIR": ray_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    settings = load_settings(
        http_host="127.0.0.1",
        http_port=port,
        log_level="WARNING",
        **({"http_workers": workers} if workers is not None else {}),
    )
    proc = start_process(gunicorn_argv(settings), env, logs / f"web-{executor}.log")
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)

        wait_until("the web app", healthy, proc, 60)
        yield url, proc
    finally:
        stop_tree(proc)
        if ray_dir is not None:
            shutil.rmtree(ray_dir, ignore_errors=True)


def analyze(url: str) -> tuple[float, dict[str, Any]]:
    """One ``POST /orchestrator/analyze``: seconds and the answer."""
    body = {"context_id": f"bench-doc-{uuid.uuid4().hex[:12]}", "segments": SEGMENTS}
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{url}/orchestrator/analyze",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"/orchestrator/analyze answered {exc.code}: {exc.read()!r}") from exc
    elapsed = time.perf_counter() - t0
    return elapsed, json.loads(raw)


def timed_analyze(url: str, sim_url: str) -> dict[str, Any]:
    """One request at L, split into phases by the simulator's call log."""
    calls_before, _ = sim_calls(sim_url, 0)
    wall0 = time.time()
    elapsed, answer = analyze(url)
    total, calls = sim_calls(sim_url, 4)
    first, last = min(calls), max(calls)
    return {
        "latency_ms": elapsed * 1000,
        "server_latency_ms": float(answer["latency_ms"]),
        "status": str(answer["status"]),
        "llm_calls": total - calls_before,
        "phases_ms": {
            "request_to_first_call": (first - wall0) * 1000,
            "call_start_skew": (last - first) * 1000,
            "llm_call": L_MS,
            "last_call_end_to_answer": (wall0 + elapsed - last) * 1000 - L_MS,
        },
    }


def warm_up(url: str, server: subprocess.Popen[bytes] | None, sim_url: str, rounds: int) -> int:
    """At least ``rounds`` rounds of four concurrent requests and, given the ``server``,
    more (up to ten) until each of its gunicorn workers has made its clients: the first
    request a worker serves builds them, and which worker takes a connection is up to the
    kernel.  A worker that has called the simulator keeps a connection to it (on Ray, its
    Ray workers call instead).  Returns the requests made."""
    import psutil

    sim_port = int(sim_url.rsplit(":", 1)[1])
    failures: list[BaseException] = []

    def one() -> None:
        try:
            analyze(url)
        except Exception as exc:
            failures.append(exc)

    def all_warm() -> bool:
        if server is None:
            return True
        workers = psutil.Process(server.pid).children()
        return all(
            any(c.raddr and c.raddr.port == sim_port for c in w.net_connections("tcp"))
            for w in workers
        )

    made = 0
    for done in range(1, 11):
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        made += len(threads)
        if failures:
            raise RuntimeError(f"{len(failures)} warm-up requests failed: {failures[0]}")
        if done >= rounds and all_warm():
            break
    return made


def measure_endpoint(
    logs: Path,
    sim_url: str,
    executor: str,
    *,
    samples: int,
    warmup: int,
    bare: BareFanout,
    workers: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    from chimera.settings import load_settings

    with web_app(logs, executor, workers, extra_env or {}) as (url, server):
        configure_sim(sim_url, ttft_ms=0, ms_per_token=0)
        first_s, _ = analyze(url)  # a local Ray starts here
        configure_sim(sim_url, ttft_ms=200, ms_per_token=0)  # keeps the workers' threads busy
        calling = server if executor == "threads" else None
        warmup_calls = 1 + warm_up(url, calling, sim_url, warmup)
        configure_sim(sim_url, ttft_ms=L_MS, ms_per_token=0)
        runs, fanout_ms = [], []
        for _ in range(samples):
            fanout_ms.append(bare.sample())
            runs.append(timed_analyze(url, sim_url))
    fanout = statistics.median(fanout_ms)
    latency = [r["latency_ms"] for r in runs]
    statuses = sorted({r["status"] for r in runs})
    calls = sorted({r["llm_calls"] for r in runs})
    ratio = statistics.median(latency) / L_MS
    return {
        "executor": executor,
        "http_workers": workers if workers is not None else load_settings().http_workers,
        "environment": extra_env or {},
        "simulated_latency_ms": L_MS,
        "samples": samples,
        "warmup_calls_excluded": warmup_calls,
        "first_call_ms": first_s * 1000,
        "latency_ms": spread(latency),
        "ratio": spread([x / L_MS for x in latency]),
        "overhead_ms": spread([x - L_MS for x in latency]),
        "bare_fanout_ms": spread(fanout_ms),
        "ratio_to_bare_fanout": statistics.median(latency) / fanout,
        "server_latency_ms": spread([r["server_latency_ms"] for r in runs]),
        "phases_ms_median": {
            k: statistics.median(r["phases_ms"][k] for r in runs) for k in runs[0]["phases_ms"]
        },
        "run_statuses": statuses,
        "llm_calls_per_run": calls,
        "target": ENDPOINT_TARGET,
        "pass": ratio <= ENDPOINT_TARGET and statuses == ["ok"] and calls == [4],
    }


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=6, help="timed runs per figure")
    parser.add_argument("--chords", type=int, default=20, help="bare chords for the baseline")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up rounds per web app")
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument(
        "--ray-logical-cpus",
        type=int,
        default=0,
        metavar="N",
        help="also measure Ray with N logical CPUs (RAY_OVERRIDE_RESOURCES): a diagnostic",
    )
    args = parser.parse_args()

    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    logs = Path(tempfile.mkdtemp(prefix="chimera-bench-analysis-"))
    with scratch_environment(), simulator() as sim_url:
        os.environ.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "ANTHROPIC_BASE_URL": sim_url,
                "GOOGLE_GEMINI_BASE_URL": sim_url,
                "OPENAI_BASE_URL": f"{sim_url}/v1",
                "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
                "CHIMERA_CELERY_CONCURRENCY": str(args.concurrency),
                "CHIMERA_LOG_LEVEL": "WARNING",
            }
        )
        try:
            results = measure_all(args, logs, sim_url)
        except BaseException:
            print(f"logs kept in {logs}", file=sys.stderr)
            raise
    shutil.rmtree(logs, ignore_errors=True)

    machine: dict[str, Any] = {
        "load_average_1m": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "bench_seconds": round(time.monotonic() - started, 1),
    }
    for name, result in results.items():
        write_result(name, result | {"machine": machine})
    summarize(results)
    print(
        f"({machine['bench_seconds']:.0f} s; 1-minute load average {machine['load_average_1m'][0]}"
        f" at the start, {machine['load_average_1m'][1]} at the end, on {machine['cpus']} CPUs)"
    )


def measure_all(args: argparse.Namespace, logs: Path, sim_url: str) -> dict[str, dict[str, Any]]:
    results = {}
    with contextlib.ExitStack() as outer:
        bare = BareFanout(sim_url)
        outer.callback(bare.close)
        with contextlib.ExitStack() as stack:
            pipeline = Pipeline(logs, args.concurrency, sim_url, stack)
            results["analysis_kafka_to_row"] = measure_kafka(
                pipeline, args.samples, args.chords, bare
            )
        endpoint: dict[str, Any] = {"samples": args.samples, "warmup": args.warmup, "bare": bare}
        results["analysis_endpoint_threads"] = measure_endpoint(
            logs, sim_url, "threads", **endpoint
        )
        if not args.no_ray:
            results["analysis_endpoint_ray"] = measure_endpoint(
                logs, sim_url, "ray", workers=1, **endpoint
            )
        if args.ray_logical_cpus:
            cpus = json.dumps({"CPU": args.ray_logical_cpus})
            results["analysis_endpoint_ray_logical_cpus"] = measure_endpoint(
                logs,
                sim_url,
                "ray",
                workers=1,
                extra_env={"RAY_OVERRIDE_RESOURCES": cpus},
                **endpoint,
            )
    return results


def summarize(results: dict[str, dict[str, Any]]) -> None:
    k = results["analysis_kafka_to_row"]
    h = k["from_handoff"]
    print(
        f"kafka to row at L = {L_MS / 1000:.0f} s: {k['latency_ms']['median']:.0f} ms "
        f"({_range(k['latency_ms'])}) = {k['ratio']['median']:.3f} x L "
        f"(target <= {k['target']}: {'pass' if k['pass'] else 'MISS'}); overhead "
        f"{k['overhead_ms']['median']:.0f} ms = {k['overhead_vs_bare_chord']:.1f}x a bare chord "
        f"of 4 + callback ({k['bare_chord_ms']['median']:.1f} ms)"
    )
    print(
        f"  the same four requests sent straight through the SDK on four threads: "
        f"{k['bare_fanout_ms']['median']:.0f} ms; the Kafka path takes "
        f"{k['ratio_to_bare_fanout']:.3f}x that"
    )
    print(
        f"  from the hand-off (no bridge): {h['latency_ms']['median']:.0f} ms "
        f"({_range(h['latency_ms'])}) = {h['ratio']['median']:.3f} x L, overhead "
        f"{h['overhead_ms']['median']:.0f} ms = {h['overhead_vs_bare_chord']:.1f}x the bare chord"
    )
    print("  phases (median ms):  via Kafka / from the hand-off")
    for phase, ms in k["phases_ms_median"].items():
        print(f"    {phase:<28} {ms:8.1f} / {h['phases_ms_median'][phase]:8.1f}")
    for name, e in results.items():
        if not name.startswith("analysis_endpoint_"):
            continue
        label = e["executor"] + "".join(f", {k}={v}" for k, v in e["environment"].items())
        verdict = "pass" if e["pass"] else "MISS"
        print(
            f"POST /orchestrator/analyze on {label} at L = {L_MS / 1000:.0f} s: "
            f"{e['latency_ms']['median']:.0f} ms ({_range(e['latency_ms'])}) = "
            f"{e['ratio']['median']:.3f} x L (target <= {e['target']}: {verdict}); "
            f"server-side {e['server_latency_ms']['median']:.0f} ms; "
            f"{e['ratio_to_bare_fanout']:.3f}x the bare SDK fan-out "
            f"({e['bare_fanout_ms']['median']:.0f} ms)"
        )
        phases = ", ".join(f"{k} {v:.0f}" for k, v in e["phases_ms_median"].items())
        print(
            f"  phases (median ms): {phases}; {e['warmup_calls_excluded']} warm-up calls "
            f"excluded (the first took {e['first_call_ms']:.0f} ms)"
        )


def _range(s: dict[str, Any]) -> str:
    low, high = s["spread"]
    return f"{low:.0f}-{high:.0f}"


if __name__ == "__main__":
    main()
