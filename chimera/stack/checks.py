"""Health checks of the stack's dependencies and components."""

from __future__ import annotations

import socket
import time
import urllib.request
from typing import Any

from celery import Celery
from celery.exceptions import TaskRevokedError
from celery.exceptions import TimeoutError as CeleryTimeout

from chimera.db.admin import current_revision
from chimera.errors import (
    ChimeraError,
    DatabaseUnavailable,
    PortInUse,
    RedisUnavailable,
    WorkerUnavailable,
)
from chimera.redis_client import make_redis, ping
from chimera.redis_errors import broker_errors, redis_errors
from chimera.settings import Settings
from chimera.settings_values import redact_url

#: How to start each service by hand on a Debian-like host (as scripts/ensure-services.sh does).
START_HINTS = {
    "redis": (
        "start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 "
        '--save "" --appendonly no'
    ),
    "postgres": (
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    ),
}


def check_redis(settings: Settings) -> str:
    client = make_redis(settings)
    try:
        ping(client)
        with redis_errors("cannot read the Redis version"):
            version = client.info("server").get("redis_version", "?")
    except ChimeraError as exc:
        raise RedisUnavailable(f"{exc}; {START_HINTS['redis']}") from exc
    finally:
        client.close()
    return f"redis {version} at {settings.redis_host}:{settings.redis_port}"


def check_postgres(settings: Settings) -> str:
    url = settings.database_url.get_secret_value()
    try:
        revision = current_revision(url)
    except DatabaseUnavailable as exc:
        if "does not exist" in str(exc):
            return f"{redact_url(url)} (database missing: run `chimera db upgrade`)"
        raise DatabaseUnavailable(f"{exc}; {START_HINTS['postgres']}") from exc
    return f"{redact_url(url)} (schema {revision or 'empty: run `chimera db upgrade`'})"


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """True if ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (our URL)
            return 200 <= int(response.status) < 300
    except OSError:
        return False


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            raise PortInUse(
                f"{what} needs {host}:{port}, but something already listens there; "
                "stop it or choose another port"
            )


def celery_client(settings: Settings) -> Celery:
    """A send-only Celery client for health checks (tasks are addressed by name)."""
    app = Celery("chimera-client", set_as_current=False)
    app.conf.update(
        broker_url=settings.celery_broker_url,
        result_backend=settings.celery_result_url,
        broker_transport_options={"global_keyprefix": settings.redis_key_prefix},
        result_backend_transport_options={"global_keyprefix": settings.redis_key_prefix},
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=1,
    )
    return app


def run_canary(settings: Settings, *, timeout_s: float) -> dict[str, Any]:
    """Send the canary task and wait for a worker to run it."""
    app = celery_client(settings)
    started = time.monotonic()
    try:
        with broker_errors("cannot reach the Celery broker"):
            result = app.send_task(
                "chimera.system.canary",
                kwargs={"source": "stack", "sent_at": time.time()},
                expires=timeout_s,
            )
            try:
                reply: dict[str, Any] = result.get(timeout=timeout_s, interval=0.1)
            finally:
                result.forget()
    except (CeleryTimeout, TaskRevokedError) as exc:
        # Revoked: it expired in the queue before a worker took it.
        raise WorkerUnavailable(f"no worker ran the canary within {timeout_s:.0f}s") from exc
    except RedisUnavailable as exc:
        raise WorkerUnavailable(exc.message) from exc
    finally:
        app.close()
    reply["round_trip_ms"] = (time.monotonic() - started) * 1000
    return reply
