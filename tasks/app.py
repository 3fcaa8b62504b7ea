"""The Celery app factory, and what a worker process sets up before it consumes.

At ``worker_init``, before the first message:

- the pool is checked: threads or solo, whatever ``-P`` said.  Prefork's children each
  keep their own metrics and die apart from the process that holds their messages;
  gevent is untested here.  Either stops the worker at start (status 2);
- with ``CHIMERA_METRICS_PORT`` set, the process's metrics are served
  (``chimera.metrics_server``).  An open network address, or a port already taken,
  stops the worker at start (status 2);
- the liveness and recovery keeper starts (``tasks.recovery``), and every task's
  request records the message it came in (``HeldRequest``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, NoReturn

from celery import Celery, concurrency
from celery.signals import worker_init, worker_shutdown

from chimera import metrics_server
from chimera.errors import ConfigError
from chimera.settings import get_settings
from tasks import broker, recovery

log = logging.getLogger(__name__)
_servers: list[metrics_server.MetricsServer] = []


def create_app() -> Celery:
    """The Chimera Celery app, configured from ``celeryconfig`` (i.e. the settings)."""
    broker.install()  # a worker that survives a Redis restart
    app = Celery("chimera")
    app.config_from_object("celeryconfig")
    app.Task.Request = "tasks.recovery:HeldRequest"
    return app


#: The pools a worker runs: each runs every task in the worker's own process.
POOLS = ("threads", "solo")


def _pool_name(pool_cls: Any) -> str:
    """The name of the pool ``-P`` or the settings chose (its module, if not ours)."""
    implementation = concurrency.get_implementation(pool_cls)
    for name in POOLS:
        if implementation is concurrency.get_implementation(name):
            return name
    return str(getattr(implementation, "__module__", pool_cls)).rsplit(".", 1)[-1]


def _refuse(message: str) -> NoReturn:
    # Celery logs and swallows a signal handler's exceptions: exit instead, as the
    # bridge and the web app do for the same refusals.  Logging is not set up yet.
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


@worker_init.connect
def _set_up_worker(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    pool = _pool_name(getattr(sender, "pool_cls", settings.celery_pool))
    if pool not in POOLS:
        _refuse(
            f"the {pool} pool is not supported: run threads (CHIMERA_CELERY_POOL=threads, "
            "no -P) or solo; see docs/reliability.md, 'Worker pools'"
        )
    if settings.metrics_port:
        try:
            server = metrics_server.serve(settings, "worker")
        except ConfigError as exc:
            _refuse(str(exc))
        if server is not None:
            sys.stderr.write(f"the worker serves its metrics on {server.url}\n")
            _servers.append(server)
    recovery.start(sender.app, settings)


@worker_shutdown.connect
def _tear_down_worker(**_: Any) -> None:
    recovery.stop()
    while _servers:
        _servers.pop().close()
