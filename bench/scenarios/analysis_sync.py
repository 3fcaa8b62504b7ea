"""Synchronous analysis: ``POST /orchestrator/analyze`` over HTTP to gunicorn serving
``web:create_app()`` as production does, on the thread pool and on Ray, at a simulated
latency L = 1 s per call.  Latency ÷ L, target <= 1.1.

Warm-up requests are excluded (the first, which on Ray starts a local Ray, is recorded
apart); the Ray server runs one gunicorn worker, since each worker process would start a
local Ray of its own.  The same four requests sent straight through the SDK are sampled
between every other timed request, as the floor of the simulator and the SDK.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from bench.common import Stats, free_port, start_process, stop_tree, wait_until
from bench.results import Outcome, Row, Target, paired
from bench.scenarios.analysis_common import L_MS, SEGMENTS, BareFanout, sim_calls
from bench.stack import Stack

NAME = "analysis_sync"


@contextlib.contextmanager
def web_app(stack: Stack, executor: str, workers: int | None) -> Iterator[str]:
    """gunicorn serving ``web:create_app()`` with the bench's environment, on a free port."""
    from chimera.settings import load_settings
    from chimera.stack.web import gunicorn_argv

    port = free_port()
    env = stack.env | {
        "CHIMERA_HTTP_HOST": "127.0.0.1",
        "CHIMERA_HTTP_PORT": str(port),
        "CHIMERA_ANALYZE_EXECUTOR": executor,
    }
    if workers is not None:
        env["CHIMERA_HTTP_WORKERS"] = str(workers)
    ray_dir = None
    if executor == "ray":
        ray_dir = tempfile.mkdtemp(prefix="cb-ray-")  # short: Ray's socket paths are limited
        env |= {"RAY_TMPDIR": ray_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    overrides: dict[str, Any] = {"http_host": "127.0.0.1", "http_port": port}
    if workers is not None:
        overrides["http_workers"] = workers
    argv = gunicorn_argv(load_settings(**overrides))
    proc = start_process(argv, env, stack.logs / f"web-{executor}.log")
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)

        wait_until("the web app", healthy, proc, 60)
        yield url
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
    return time.perf_counter() - t0, json.loads(raw)


def warm_up(url: str, rounds: int) -> None:
    """``rounds`` rounds of four concurrent requests: every gunicorn worker (and, on Ray,
    every Ray worker) has built its clients before the timed requests."""
    failures: list[BaseException] = []

    def one() -> None:
        try:
            analyze(url)
        except Exception as exc:
            failures.append(exc)

    for _ in range(rounds):
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"{len(failures)} warm-up requests failed: {failures[0]}")


def measure(stack: Stack, executor: str, samples: int, bare: BareFanout) -> Row:
    workers = 1 if executor == "ray" else None
    with web_app(stack, executor, workers) as url:
        stack.sim.latency(0)
        first_s, _ = analyze(url)  # a local Ray starts here
        stack.sim.latency(0.2)  # keeps the workers' threads busy, so that all are used
        warm_up(url, 2)
        stack.sim.latency(L_MS / 1000)
        latency, server, fanout, calls, statuses = [], [], [], [], set()
        for i in range(samples):
            if i % 2 == 0:
                fanout.append(bare.sample())
            before, _ = sim_calls(stack.sim, 0)
            elapsed, answer = analyze(url)
            latency.append(elapsed * 1000)
            server.append(float(answer["latency_ms"]))
            statuses.add(str(answer["status"]))
            calls.append(sim_calls(stack.sim, 0)[0] - before)
    if statuses != {"ok"} or set(calls) != {4}:
        raise RuntimeError(f"analyses ended {sorted(statuses)} with {sorted(set(calls))} calls")
    details = {
        "first_call_ms": first_s * 1000,
        "server_latency_ms": Stats.of(server).to_json(),
        "bare_sdk_fanout_ms": Stats.of(fanout).to_json(),
        "latency_over_bare_fanout": statistics.median(latency) / statistics.median(fanout),
        "http_workers": workers or stack.settings.http_workers,
    }
    figure = f"/orchestrator/analyze on {executor}, L = 1 s"
    return paired(
        NAME,
        figure,
        "ms",
        latency,
        baseline=("L", "ms", [L_MS]),
        target=Target("<=", 1.1),
        details=details,
    )


def run(stack: Stack, quick: bool) -> Outcome:
    samples = 3 if quick else 6
    bare = BareFanout(stack.sim.url)
    try:
        rows = [measure(stack, executor, samples, bare) for executor in ("threads", "ray")]
    finally:
        bare.close()
    return Outcome(rows, samples)
