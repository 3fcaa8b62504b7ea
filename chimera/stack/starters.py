"""How each component of the local stack is started, and when it counts as ready.

One ``start_*`` function per component: it refuses a port someone else holds, spawns the
process (:mod:`chimera.stack.procs`) with the settings in its environment, and returns only
once the component answers, so ``up`` can start the next one on top of it.  The order and
the up/down/status bookkeeping are :mod:`chimera.stack.control`'s.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chimera import defaults, heartbeat, metrics_server
from chimera.errors import ChimeraError, PortInUse, StackError
from chimera.kafka import broker
from chimera.kafka.topics import list_topics
from chimera.redis_client import make_redis
from chimera.settings import Settings, to_env
from chimera.stack import checks, objectstore, procs
from chimera.stack import flower as flower_component
from chimera.stack import web as web_component

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def kafka_address(settings: Settings) -> tuple[str, int] | None:
    """The address of a broker we should run ourselves, or None if it is external."""
    first = settings.bootstrap_servers[0]
    host, _, port = first.rpartition(":")
    if len(settings.bootstrap_servers) == 1 and host in LOOPBACK:
        return host, int(port)
    return None


def uses_s3(settings: Settings) -> bool:
    """The stack runs its own broker, keeping records in its own S3 server."""
    return settings.kafka_storage == "s3" and kafka_address(settings) is not None


def broker_storage(settings: Settings) -> tuple[str, dict[str, str]]:
    """The stack's broker's storage engine URL and the environment it needs."""
    if settings.kafka_storage == "s3":
        return broker.s3_storage(objectstore.BUCKET), broker.s3_env(objectstore.url(settings))
    return broker.MEMORY_STORAGE, {}


def sim_url(settings: Settings) -> str:
    return f"http://{settings.sim_host}:{settings.sim_port}"


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a started process: ours, the settings, and the repository on
    PYTHONPATH (the processes import ``tasks``, ``bridges``, ``web`` and ``llmsim`` from it)."""
    env = dict(os.environ) | to_env(settings)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def celery_argv(settings: Settings, command: str) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", command]
    argv += ["--loglevel", settings.log_level]
    if command == "worker":
        argv += ["--hostname", f"chimera-{os.getpid()}@%h"]
    return argv


def with_metrics_port(settings: Settings, name: str) -> Settings:
    """``settings`` with the stack's metrics port of component ``name``: a base
    (``CHIMERA_METRICS_PORT`` if set, else ``STACK_METRICS_PORT``) plus the component's
    offset, so the worker and the bridge never ask for the same port."""
    base = settings.metrics_port or defaults.STACK_METRICS_PORT
    return settings.model_copy(update={"metrics_port": base + defaults.STACK_METRICS_PORTS[name]})


def metrics_url(settings: Settings) -> str:
    """Where a process started with ``settings`` serves its own ``/metrics``."""
    return metrics_server.url(settings.metrics_host, settings.metrics_port)


def _ensure_metrics_port_free(settings: Settings, what: str) -> None:
    host = (
        "127.0.0.1"
        if web_component.is_any_address(settings.metrics_host)
        else (settings.metrics_host)
    )
    checks.ensure_port_free(host, settings.metrics_port, f"{what}'s metrics (CHIMERA_METRICS_PORT)")


def bridge_beat(settings: Settings, pid: int) -> heartbeat.Heartbeat | None:
    """The heartbeat of the bridge process ``pid`` (its instance is ``host:pid``)."""
    client = make_redis(settings)
    try:
        beats = heartbeat.read(client, settings, "bridge")
    finally:
        client.close()
    return next((b for b in beats if b.instance.endswith(f":{pid}")), None)


def _wait(
    what: str, ready: Callable[[], bool], record: procs.ProcessRecord, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not record.is_alive():
            raise StackError(f"{what} exited during start-up; see {record.log_path}")
        if ready():
            return
        time.sleep(0.2)
    raise StackError(f"{what} not ready after {timeout_s:.0f}s; see {record.log_path}")


def sim_argv(settings: Settings) -> list[str]:
    """``python -m llmsim`` with the settings' address and pacing.  The simulator is a
    top-level package of its own, run as a process, so ``chimera`` never imports it."""
    argv = [sys.executable, "-m", "llmsim", "--host", settings.sim_host]
    argv += ["--port", str(settings.sim_port), "--ttft-ms", str(settings.sim_ttft_ms)]
    argv += ["--ms-per-token", str(settings.sim_ms_per_token)]
    return argv


def start_sim(settings: Settings) -> procs.ProcessRecord | None:
    checks.ensure_port_free(settings.sim_host, settings.sim_port, "the LLM simulator")
    record = procs.spawn(
        "sim",
        sim_argv(settings),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "sim.log",
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        url=sim_url(settings),
    )
    _wait(
        "the LLM simulator",
        lambda: checks.http_ok(f"{record.url}/_sim/health"),
        record,
        settings.stack_ready_timeout_s,
    )
    return record


def start_s3(settings: Settings) -> procs.ProcessRecord | None:
    """The S3 server the broker keeps its records in, with the broker's bucket created."""
    if not uses_s3(settings):
        return None
    what = "the S3 server of the Kafka broker (CHIMERA_KAFKA_S3_PORT)"
    checks.ensure_port_free(objectstore.HOST, settings.kafka_s3_port, what)
    endpoint = objectstore.url(settings)
    record = procs.spawn(
        "s3",
        objectstore.server_argv(settings.kafka_s3_port),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "s3.log",
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        url=endpoint,
    )
    _wait(what, lambda: objectstore.is_ready(endpoint), record, settings.stack_ready_timeout_s)
    objectstore.create_bucket(endpoint)
    return record


def start_kafka(settings: Settings) -> procs.ProcessRecord | None:
    address = kafka_address(settings)
    if address is None:
        list_topics(settings)  # external cluster: just check it answers
        return None
    host, port = address
    checks.ensure_port_free(host, port, "the Kafka broker (KAFKA_BOOTSTRAP_SERVERS)")
    storage, storage_env = broker_storage(settings)
    record = procs.spawn(
        "kafka",
        broker.broker_command(host, port, storage),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "kafka.log",
        env=broker.broker_env(storage_env),
        url=f"{host}:{port}",
    )
    broker.wait_until_ready(settings, settings.stack_ready_timeout_s)
    return record


def start_worker(settings: Settings) -> procs.ProcessRecord:
    # Task events on from the start: Flower switches them on in running workers only
    # every few seconds, and tasks run before that would never show in it.
    events_on = with_metrics_port(settings, "worker").model_copy(
        update={"celery_task_events": True}
    )
    _ensure_metrics_port_free(events_on, "the Celery worker")
    record = procs.spawn(
        "worker",
        celery_argv(settings, "worker"),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "worker.log",
        env=child_env(events_on),
        cwd=PROJECT_ROOT,
        url=metrics_url(events_on),
    )

    def ready() -> bool:
        try:
            checks.run_canary(settings, timeout_s=2.0)
            return True
        except ChimeraError:
            return False

    _wait("the Celery worker", ready, record, settings.stack_ready_timeout_s)
    return record


def start_beat(settings: Settings) -> procs.ProcessRecord:
    log_path = settings.log_dir / "beat.log"
    offset = procs.log_size(log_path)
    record = procs.spawn(
        "beat",
        celery_argv(settings, "beat"),
        run_dir=settings.run_dir,
        log_path=log_path,
        env=child_env(settings),
        cwd=PROJECT_ROOT,
    )
    _wait(
        "Celery beat",
        lambda: procs.log_contains(log_path, "beat: Starting", after_offset=offset),
        record,
        settings.stack_ready_timeout_s,
    )
    return record


def start_bridge(settings: Settings) -> procs.ProcessRecord:
    served = with_metrics_port(settings, "bridge")
    _ensure_metrics_port_free(served, "the Kafka bridge")
    record = procs.spawn(
        "bridge",
        [sys.executable, "-m", "bridges"],
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "bridge.log",
        env=child_env(served),
        cwd=PROJECT_ROOT,
        url=metrics_url(served),
    )

    def ready() -> bool:
        # Joined its consumer group: it beats with its partitions once assigned.
        beat = bridge_beat(settings, record.pid)
        return beat is not None and bool(beat.info.get("assigned"))

    _wait("the Kafka bridge", ready, record, settings.stack_ready_timeout_s)
    return record


def start_web(settings: Settings) -> procs.ProcessRecord:
    checks.ensure_port_free(
        web_component.probe_host(settings),
        settings.http_port,
        "the web app (CHIMERA_HTTP_HOST, CHIMERA_HTTP_PORT)",
    )
    metrics_dir = settings.run_dir / "web-metrics"
    record = procs.spawn(
        "web",
        web_component.gunicorn_argv(settings),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "web.log",
        # gunicorn's master empties it at start (web/gunicorn_conf.py).
        env=child_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        cwd=PROJECT_ROOT,
        url=web_component.base_url(settings),
    )
    _wait(
        "the web app",
        lambda: checks.http_ok(f"{record.url}/healthz"),
        record,
        settings.stack_ready_timeout_s,
    )
    return record


def start_flower(settings: Settings) -> procs.ProcessRecord:
    what = "Flower (CHIMERA_FLOWER_HOST, CHIMERA_FLOWER_PORT)"
    host = flower_component.probe_host(settings)
    checks.ensure_port_free(host, settings.flower_port, what)
    log_path = settings.log_dir / "flower.log"
    offset = procs.log_size(log_path)
    record = procs.spawn(
        "flower",
        flower_component.flower_argv(settings),
        run_dir=settings.run_dir,
        log_path=log_path,
        env=flower_component.flower_env(settings, child_env(settings)),
        cwd=PROJECT_ROOT,
        url=flower_component.base_url(settings),
    )
    try:
        _wait(
            "Flower",
            lambda: flower_component.is_ready(settings),
            record,
            settings.stack_ready_timeout_s,
        )
    except StackError as exc:
        # Taken by a socket that does not accept connections (so the check missed it).
        if procs.log_contains(log_path, flower_component.BIND_FAILED, after_offset=offset):
            raise PortInUse(
                f"{what} needs {host}:{settings.flower_port}, but it is in use; "
                "stop what holds it or choose another port"
            ) from exc
        raise
    return record


STARTERS: dict[str, Callable[[Settings], procs.ProcessRecord | None]] = {
    "sim": start_sim,
    "s3": start_s3,
    "kafka": start_kafka,
    "worker": start_worker,
    "flower": start_flower,
    "beat": start_beat,
    "bridge": start_bridge,
    "web": start_web,
}
