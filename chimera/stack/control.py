"""`chimera stack up|down|status`."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chimera import defaults as d
from chimera import heartbeat
from chimera.db import admin
from chimera.errors import ChimeraError, PortInUse, StackError
from chimera.exposure import check_bind, check_ray_settings
from chimera.kafka import broker
from chimera.kafka.topics import ensure_topics, list_topics
from chimera.redaction import redactor_for
from chimera.redis_client import make_redis
from chimera.settings import Settings, to_env
from chimera.stack import checks, procs
from chimera.stack import flower as flower_component
from chimera.stack import web as web_component

log = logging.getLogger(__name__)

#: Start order; stopped in reverse.  Flower comes right after the worker, so it
#: watches every task from beat's first onwards.
COMPONENTS = ("sim", "kafka", "worker", "flower", "beat", "bridge", "web")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Longer than the worker's soft shutdown, so in-flight tasks can finish.
STOP_TIMEOUT_S = d.WORKER_SOFT_SHUTDOWN_TIMEOUT_S + 15


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    healthy: bool
    state: str  # "ok", "stopped", "unhealthy", "external", "starting"
    pid: int | None = None
    detail: str = ""

    def line(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "-"
        return f"{self.name:<9} {self.state:<10} {pid:<11} {self.detail}"


def _kafka_address(settings: Settings) -> tuple[str, int] | None:
    """The address of a broker we should run ourselves, or None if it is external."""
    first = settings.bootstrap_servers[0]
    host, _, port = first.rpartition(":")
    if len(settings.bootstrap_servers) == 1 and host in LOOPBACK:
        return host, int(port)
    return None


def uses_simulator(settings: Settings) -> bool:
    """No provider has a key or a base URL: the simulator stands in for all three."""
    return not settings.configured_providers


def with_simulator(settings: Settings) -> Settings:
    """``settings`` with every provider pointed at the local simulator, when none is
    configured; otherwise unchanged."""
    if not uses_simulator(settings):
        return settings
    base = f"http://{settings.sim_host}:{settings.sim_port}"
    return settings.model_copy(
        update={
            "anthropic_base_url": base,
            "google_gemini_base_url": base,
            "openai_base_url": f"{base}/v1",
        }
    )


def _sim_url(settings: Settings) -> str:
    return f"http://{settings.sim_host}:{settings.sim_port}"


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ) | to_env(settings)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def _celery_argv(settings: Settings, command: str) -> list[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", command]
    argv += ["--loglevel", settings.log_level]
    if command == "worker":
        argv += ["--hostname", f"chimera-{os.getpid()}@%h"]
    return argv


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


def _start_sim(settings: Settings) -> procs.ProcessRecord | None:
    checks.ensure_port_free(settings.sim_host, settings.sim_port, "the LLM simulator")
    argv = [sys.executable, "-m", "chimera", "sim", "--host", settings.sim_host]
    argv += ["--port", str(settings.sim_port), "--ttft-ms", str(settings.sim_ttft_ms)]
    argv += ["--ms-per-token", str(settings.sim_ms_per_token)]
    record = procs.spawn(
        "sim",
        argv,
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "sim.log",
        env=_child_env(settings),
        cwd=PROJECT_ROOT,
        url=_sim_url(settings),
    )
    _wait(
        "the LLM simulator",
        lambda: checks.http_ok(f"{record.url}/_sim/health"),
        record,
        settings.stack_ready_timeout_s,
    )
    return record


def _start_kafka(settings: Settings) -> procs.ProcessRecord | None:
    address = _kafka_address(settings)
    if address is None:
        list_topics(settings)  # external cluster: just check it answers
        return None
    host, port = address
    checks.ensure_port_free(host, port, "the Kafka broker (KAFKA_BOOTSTRAP_SERVERS)")
    record = procs.spawn(
        "kafka",
        broker.broker_command(host, port),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "kafka.log",
        env=broker.broker_env(),
        url=f"{host}:{port}",
    )
    broker.wait_until_ready(settings, settings.stack_ready_timeout_s)
    return record


def _start_worker(settings: Settings) -> procs.ProcessRecord:
    # Task events on from the start: Flower switches them on in running workers only
    # every few seconds, and tasks run before that would never show in it.
    events_on = settings.model_copy(update={"celery_task_events": True})
    record = procs.spawn(
        "worker",
        _celery_argv(settings, "worker"),
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "worker.log",
        env=_child_env(events_on),
        cwd=PROJECT_ROOT,
    )

    def ready() -> bool:
        try:
            checks.run_canary(settings, timeout_s=2.0)
            return True
        except ChimeraError:
            return False

    _wait("the Celery worker", ready, record, settings.stack_ready_timeout_s)
    return record


def _start_beat(settings: Settings) -> procs.ProcessRecord:
    log_path = settings.log_dir / "beat.log"
    offset = procs.log_size(log_path)
    record = procs.spawn(
        "beat",
        _celery_argv(settings, "beat"),
        run_dir=settings.run_dir,
        log_path=log_path,
        env=_child_env(settings),
        cwd=PROJECT_ROOT,
    )
    _wait(
        "Celery beat",
        lambda: procs.log_contains(log_path, "beat: Starting", after_offset=offset),
        record,
        settings.stack_ready_timeout_s,
    )
    return record


def _bridge_beat(settings: Settings, pid: int) -> heartbeat.Heartbeat | None:
    """The heartbeat of the bridge process ``pid`` (its instance is ``host:pid``)."""
    client = make_redis(settings)
    try:
        beats = heartbeat.read(client, settings, "bridge")
    finally:
        client.close()
    return next((b for b in beats if b.instance.endswith(f":{pid}")), None)


def _start_bridge(settings: Settings) -> procs.ProcessRecord:
    record = procs.spawn(
        "bridge",
        [sys.executable, "-m", "bridges"],
        run_dir=settings.run_dir,
        log_path=settings.log_dir / "bridge.log",
        env=_child_env(settings),
        cwd=PROJECT_ROOT,
    )

    def ready() -> bool:
        # Joined its consumer group: it beats with its partitions once assigned.
        beat = _bridge_beat(settings, record.pid)
        return beat is not None and bool(beat.info.get("assigned"))

    _wait("the Kafka bridge", ready, record, settings.stack_ready_timeout_s)
    return record


def _start_web(settings: Settings) -> procs.ProcessRecord:
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
        env=_child_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
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


def _start_flower(settings: Settings) -> procs.ProcessRecord:
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
        env=flower_component.flower_env(settings, _child_env(settings)),
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
    "sim": _start_sim,
    "kafka": _start_kafka,
    "worker": _start_worker,
    "flower": _start_flower,
    "beat": _start_beat,
    "bridge": _start_bridge,
    "web": _start_web,
}


def up(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Check Redis and Postgres, migrate, then start each missing component in order."""
    # What the web app would refuse (an open API on the network, a Ray cluster without its
    # token), refused before anything starts.
    warning = check_bind(settings)
    if warning is not None:
        log.warning("%s", warning)
    check_ray_settings(settings)
    simulated = uses_simulator(settings)
    settings = with_simulator(settings)
    echo(f"redis     ok         {checks.check_redis(settings)}")
    revision = admin.upgrade(settings)
    echo(f"postgres  ok         {checks.check_postgres(settings)} -> {revision}")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started_now: list[str] = []
    for name in COMPONENTS:
        if name == "sim" and not simulated:
            providers = ", ".join(settings.configured_providers)
            echo(f"{'sim':<9} {'not used':<10} {'-':<11} providers: {providers}")
            continue
        record = procs.read_record(settings.run_dir, name)
        if record is not None and record.is_alive():
            echo(f"{name:<9} running    pid {record.pid}")
            continue
        try:
            started = STARTERS[name](settings)
        except ChimeraError:
            # Leave nothing half-started: stop what this call started (and the failed one).
            down(settings, only=[*started_now, name], echo=lambda _: None)
            raise
        started_now.append(name)
        if name == "sim":
            detail = (
                f"{_sim_url(settings)}: no LLM provider is configured, so the simulator "
                "stands in for anthropic, google and openai"
            )
        elif name == "kafka":
            created = ensure_topics(settings)
            detail = f"{settings.kafka_bootstrap_servers}, {len(created)} topics created"
        elif name in ("web", "flower") and started is not None:
            detail = f"{started.url}, log {settings.log_dir / (name + '.log')}"
        else:
            detail = f"log {settings.log_dir / (name + '.log')}"
        pid = f"pid {started.pid}" if started else "external"
        echo(f"{name:<9} started    {pid:<11} {detail}")


def down(
    settings: Settings,
    *,
    only: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Stop every component we started (or ``only`` those), newest first."""
    for name in reversed(COMPONENTS):
        if only is not None and name not in only:
            continue
        record = procs.read_record(settings.run_dir, name)
        if record is None:
            continue
        was_running = procs.stop(record, run_dir=settings.run_dir, timeout_s=STOP_TIMEOUT_S)
        echo(f"{name:<9} {'stopped' if was_running else 'was not running'}")


def status(settings: Settings) -> list[ComponentStatus]:
    """One status per dependency and component; no secret in any detail."""
    redactor = redactor_for(settings)
    return [dataclasses.replace(s, detail=redactor.redact(s.detail)) for s in _statuses(settings)]


def _statuses(settings: Settings) -> list[ComponentStatus]:
    simulated = uses_simulator(settings)
    settings = with_simulator(settings)
    out = [_dependency("redis", checks.check_redis, settings)]
    out.append(_dependency("postgres", checks.check_postgres, settings))
    for name in COMPONENTS:
        record = procs.read_record(settings.run_dir, name)
        if name == "sim" and not simulated:
            providers = ", ".join(settings.configured_providers)
            out.append(ComponentStatus("sim", True, "not used", detail=f"providers: {providers}"))
        elif name == "kafka" and _kafka_address(settings) is None:
            out.append(_dependency("kafka", _kafka_detail, settings, state="external"))
        elif record is None or not record.is_alive():
            out.append(ComponentStatus(name, False, "stopped"))
        else:
            out.append(_component(name, record, settings))
    return out


def _dependency(
    name: str, check: Callable[[Settings], str], settings: Settings, state: str = "ok"
) -> ComponentStatus:
    try:
        return ComponentStatus(name, True, state, detail=check(settings))
    except ChimeraError as exc:
        return ComponentStatus(name, False, "unhealthy", detail=str(exc))


def _kafka_detail(settings: Settings) -> str:
    topics = list_topics(settings)
    missing = [t for t in settings.topics.values() if t not in topics]
    note = f"missing topics: {', '.join(missing)}" if missing else "all topics present"
    return f"{settings.kafka_bootstrap_servers}, {note}"


def _component(name: str, record: procs.ProcessRecord, settings: Settings) -> ComponentStatus:
    try:
        if name == "sim":
            if not checks.http_ok(f"{_sim_url(settings)}/_sim/health"):
                raise StackError(f"the simulator at {_sim_url(settings)} does not answer")
            detail = f"{_sim_url(settings)} (standing in for every LLM provider)"
        elif name == "kafka":
            detail = _kafka_detail(settings)
        elif name == "worker":
            reply = checks.run_canary(settings, timeout_s=5.0)
            detail = f"canary ran on {reply['worker']} in {reply['round_trip_ms']:.0f} ms"
        elif name == "bridge":
            detail = _bridge_detail(settings, record)
        elif name == "web":
            detail = web_component.detail(settings)
        elif name == "flower":
            detail = flower_component.detail(settings)
        else:
            detail = _beat_detail(settings, record)
    except ChimeraError as exc:
        return ComponentStatus(name, False, "unhealthy", record.pid, str(exc))
    return ComponentStatus(name, True, "ok", record.pid, detail)


def _bridge_detail(settings: Settings, record: procs.ProcessRecord) -> str:
    beat = _bridge_beat(settings, record.pid)
    if beat is None:
        raise StackError(f"the bridge has not beaten recently; see {record.log_path}")
    info = beat.info
    state = str(info.get("state", "running"))
    if state.startswith("waiting"):  # e.g. "waiting for Postgres": alive, but taking nothing
        raise StackError(f"the bridge is {state}; see {record.log_path}")
    dead = sum(info.get("dead_lettered", {}).values())
    return (
        f"{state}: group {info.get('group')}, {len(info.get('assigned', []))} partitions, "
        f"{info.get('handed_off', 0)} handed off, {info.get('duplicates', 0)} duplicates, "
        f"{dead} dead-lettered, queue {info.get('queue_depth')}, beat {beat.age_s:.0f}s ago"
    )


def _beat_detail(settings: Settings, record: procs.ProcessRecord) -> str:
    client = make_redis(settings)
    try:
        beats = heartbeat.read(client, settings, "beat")
    finally:
        client.close()
    if beats:
        return f"last scheduled canary ran {beats[0].age_s:.0f}s ago"
    return f"running; first schedule due within {settings.heartbeat_interval_s:.0f}s"
