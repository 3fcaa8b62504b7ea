"""The Celery app factory, and the worker's own ``/metrics`` listener.

With ``CHIMERA_METRICS_PORT`` set, a worker serves its process's metrics
(``chimera.metrics_server``) from ``worker_init`` on, before it consumes anything.  The
threads, solo and gevent pools run every task in that process, so its registry holds
them all.  Under prefork the figures are in the children, each with its own registry:
the worker warns and serves nothing rather than a listener without them.  An open
network address, or a port already taken, stops the worker at start (status 2).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery, concurrency
from celery.signals import worker_init, worker_shutdown

from chimera import metrics_server
from chimera.errors import ConfigError
from chimera.settings import get_settings
from tasks import broker

log = logging.getLogger(__name__)
_servers: list[metrics_server.MetricsServer] = []


def create_app() -> Celery:
    """The Chimera Celery app, configured from ``celeryconfig`` (i.e. the settings)."""
    broker.install()  # a worker that survives a Redis restart
    app = Celery("chimera")
    app.config_from_object("celeryconfig")
    return app


def _is_prefork(pool_cls: Any) -> bool:
    from celery.concurrency.prefork import TaskPool  # noqa: PLC0415 - only for this check

    implementation = concurrency.get_implementation(pool_cls)
    return isinstance(implementation, type) and issubclass(implementation, TaskPool)


@worker_init.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    if settings.metrics_port == 0:
        return
    if _is_prefork(getattr(sender, "pool_cls", None)):
        log.warning(
            "CHIMERA_METRICS_PORT=%d is ignored: under the prefork pool each child holds its "
            "own figures and this process has none to serve; use the threads pool "
            "(CHIMERA_CELERY_POOL=threads) to scrape a worker",
            settings.metrics_port,
        )
        return
    try:
        server = metrics_server.serve(settings, "worker")
    except ConfigError as exc:
        # Celery logs and swallows a signal handler's exceptions: exit instead, as the
        # bridge and the web app do for the same refusal.  Logging is not set up yet.
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from exc
    if server is not None:
        sys.stderr.write(f"the worker serves its metrics on {server.url}\n")
        _servers.append(server)


@worker_shutdown.connect
def _stop_metrics(**_: Any) -> None:
    while _servers:
        _servers.pop().close()
