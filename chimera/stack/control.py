"""`chimera stack up|down|status`: the order of the components and their bookkeeping.

How each one is started and found ready is :mod:`chimera.stack.starters`'s; here is which
ones run (the simulator only while no provider is configured), in what order, how they are
stopped, and what ``status`` says of each.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from chimera import defaults as d
from chimera import heartbeat, metrics_server
from chimera.db import admin
from chimera.errors import ChimeraError, StackError
from chimera.exposure import check_bind, check_ray_settings
from chimera.kafka.topics import ensure_topics, list_topics
from chimera.redaction import redactor_for
from chimera.redis_client import make_redis
from chimera.settings import Settings
from chimera.stack import checks, objectstore, procs
from chimera.stack import flower as flower_component
from chimera.stack import web as web_component
from chimera.stack.starters import (
    STARTERS,
    bridge_beat,
    kafka_address,
    sim_url,
    uses_s3,
    with_metrics_port,
)

log = logging.getLogger(__name__)

#: Start order; stopped in reverse.  The S3 server holds the broker's records, so it
#: starts before and stops after the broker.  Flower comes right after the worker, so it
#: watches every task from beat's first onwards.
COMPONENTS = ("sim", "s3", "kafka", "worker", "flower", "beat", "bridge", "web")
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


def uses_simulator(settings: Settings) -> bool:
    """No provider has a key or a base URL: the simulator stands in for all three."""
    return not settings.configured_providers


def with_simulator(settings: Settings) -> Settings:
    """``settings`` with every provider pointed at the local simulator, when none is
    configured; otherwise unchanged."""
    if not uses_simulator(settings):
        return settings
    base = sim_url(settings)
    return settings.model_copy(
        update={
            "anthropic_base_url": base,
            "google_gemini_base_url": base,
            "openai_base_url": f"{base}/v1",
        }
    )


def up(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Check Redis and Postgres, migrate, then start each missing component in order."""
    # What the web app would refuse (an open API on the network, a Ray cluster without its
    # token), refused before anything starts.
    warning = check_bind(settings)
    if warning is not None:
        log.warning("%s", warning)
    check_ray_settings(settings)
    # And what the worker and the bridge would refuse: an open metrics listener.
    metrics_server.check_bind(with_metrics_port(settings, "worker"))
    simulated = uses_simulator(settings)
    settings = with_simulator(settings)
    echo(f"redis     ok         {checks.check_redis(settings)}")
    revision = admin.upgrade(settings)
    echo(f"postgres  ok         {checks.check_postgres(settings)} -> {revision}")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started_now: list[str] = []
    for name in COMPONENTS:
        unused = _not_used(name, settings, simulated=simulated)
        if unused is not None:
            echo(f"{name:<9} {'not used':<10} {'-':<11} {unused}")
            continue
        record = procs.read_record(settings.run_dir, name)
        if record is not None and record.is_alive():
            echo(f"{name:<9} running    pid {record.pid}")
            continue
        if name == "s3":
            _stop_broker_on_a_new_store(settings, echo)
        try:
            started = STARTERS[name](settings)
        except ChimeraError:
            # Leave nothing half-started: stop what this call started (and the failed one).
            down(settings, only=[*started_now, name], echo=lambda _: None)
            raise
        started_now.append(name)
        pid = f"pid {started.pid}" if started else "external"
        echo(f"{name:<9} started    {pid:<11} {_started_detail(name, started, settings)}")


def _not_used(name: str, settings: Settings, *, simulated: bool) -> str | None:
    """Why component ``name`` does not run with these settings, or None if it does."""
    if name == "sim" and not simulated:
        return f"providers: {', '.join(settings.configured_providers)}"
    if name == "s3" and not uses_s3(settings):
        if kafka_address(settings) is None:
            return "the Kafka cluster is external"
        return "CHIMERA_KAFKA_STORAGE=memory: a broker restart loses its records"
    return None


def _started_detail(name: str, started: procs.ProcessRecord | None, settings: Settings) -> str:
    log_path = settings.log_dir / f"{name}.log"
    if name == "sim":
        return (
            f"{sim_url(settings)}: no LLM provider is configured, so the simulator "
            "stands in for anthropic, google and openai"
        )
    if name == "kafka":
        created = ensure_topics(settings)
        detail = f"{settings.kafka_bootstrap_servers}, {len(created)} topics created"
        if started is not None:
            detail += f", records in {_storage(settings, started.argv)}"
        return detail
    if started is None:
        return f"log {log_path}"
    where = {
        "s3": f"{started.url}, bucket {objectstore.BUCKET}, ",
        "web": f"{started.url}, ",
        "flower": f"{started.url}, ",
        "worker": f"metrics {started.url}, ",
        "bridge": f"metrics {started.url}, ",
    }
    return f"{where.get(name, '')}log {log_path}"


def _storage(settings: Settings, argv: list[str]) -> str:
    """Where the broker started with ``argv`` keeps its records."""
    engine = ""
    if "--storage-engine" in argv[:-1]:
        engine = argv[argv.index("--storage-engine") + 1]
    if engine.startswith("s3://"):
        return f"S3 bucket {objectstore.BUCKET} at {objectstore.url(settings)}"
    return "the broker's memory (a broker restart loses them)"


def _stop_broker_on_a_new_store(settings: Settings, echo: Callable[[str], None]) -> None:
    """A broker still running while its S3 server is (re)started would keep serving what
    the old one held, or memory: stop it, so it starts afresh on the new server."""
    record = procs.read_record(settings.run_dir, "kafka")
    if record is not None and record.is_alive():
        procs.stop(record, run_dir=settings.run_dir, timeout_s=STOP_TIMEOUT_S)
        echo(f"{'kafka':<9} stopped    to start on the new S3 server (its records are gone)")


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
        elif name == "s3" and (unused := _not_used(name, settings, simulated=simulated)):
            out.append(ComponentStatus("s3", True, "not used", detail=unused))
        elif name == "kafka" and kafka_address(settings) is None:
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
            if not checks.http_ok(f"{sim_url(settings)}/_sim/health"):
                raise StackError(f"the simulator at {sim_url(settings)} does not answer")
            detail = f"{sim_url(settings)} (standing in for every LLM provider)"
        elif name == "s3":
            detail = objectstore.detail(settings)
        elif name == "kafka":
            detail = f"{_kafka_detail(settings)}; records in {_storage(settings, record.argv)}"
        elif name == "worker":
            reply = checks.run_canary(settings, timeout_s=5.0)
            detail = f"canary ran on {reply['worker']} in {reply['round_trip_ms']:.0f} ms"
            detail += _metrics_detail(record)
        elif name == "bridge":
            detail = _bridge_detail(settings, record) + _metrics_detail(record)
        elif name == "web":
            detail = web_component.detail(settings)
        elif name == "flower":
            detail = flower_component.detail(settings)
        else:
            detail = _beat_detail(settings, record)
    except ChimeraError as exc:
        return ComponentStatus(name, False, "unhealthy", record.pid, str(exc))
    return ComponentStatus(name, True, "ok", record.pid, detail)


def _metrics_detail(record: procs.ProcessRecord) -> str:
    """Where a worker or the bridge serves its own ``/metrics`` (records written before
    processes served them have no URL)."""
    return f"; metrics {record.url}" if record.url else ""


def _bridge_detail(settings: Settings, record: procs.ProcessRecord) -> str:
    beat = bridge_beat(settings, record.pid)
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
