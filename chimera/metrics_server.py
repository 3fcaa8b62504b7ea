"""A process's own ``/metrics`` listener: Celery workers and the Kafka bridge.

Each process keeps its Prometheus figures (LLM latency histograms, limiter waits,
breaker state, admission gauges: ``chimera.metrics``) in its own memory; only the web
app's ``/metrics`` is served by default, and it holds the web workers' figures and the
fleet's (read from the stores).  With ``CHIMERA_METRICS_PORT`` set (0, the default,
serves nothing), a worker or the bridge answers ``GET /metrics`` on
``CHIMERA_METRICS_HOST:CHIMERA_METRICS_PORT`` from a daemon thread.

* **One port per process.**  There is no per-process offset: a process whose port is
  taken refuses to start (``ConfigError`` naming ``CHIMERA_METRICS_PORT``), so two
  processes never silently share or skip a port.  Give each process on a host its own
  ``CHIMERA_METRICS_PORT`` (the local stack does: ``chimera.defaults.STACK_METRICS_PORT``).
* **Closed by default.**  It listens on loopback.  A non-loopback host without
  ``CHIMERA_API_TOKEN`` or ``CHIMERA_METRICS_TOKEN`` is refused at start-up; with
  either set, a scrape must send ``Authorization: Bearer <token>`` (``chimera.bearer``,
  the check the web app's ``/metrics`` uses).
* **Celery pools.**  The threads and solo pools run tasks in the worker's one process,
  which serves them; the others are refused at start (``tasks.app``).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from chimera import bearer
from chimera import metrics as _metrics  # noqa: F401  (registers chimera's metric families)
from chimera.errors import ConfigError
from chimera.exposure import is_loopback
from chimera.settings import Settings

log = logging.getLogger(__name__)

PATH = "/metrics"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def url(host: str, port: int) -> str:
    """``http://host:port/metrics`` (IPv6 hosts in brackets)."""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{port}{PATH}"


def check_bind(settings: Settings) -> None:
    """Refuse (``ConfigError``) an open metrics listener on a network address."""
    host = settings.metrics_host
    if settings.metrics_port == 0 or is_loopback(host) or bearer.operator_tokens(settings):
        return
    raise ConfigError(
        "invalid configuration:\n"
        f"  CHIMERA_METRICS_HOST: {host or '(every address)'} is not a loopback address and "
        "neither CHIMERA_METRICS_TOKEN nor CHIMERA_API_TOKEN is set, so this process's "
        "/metrics (spend, queue depths, model names) would be open to the network: set "
        "CHIMERA_METRICS_TOKEN (e.g. `openssl rand -hex 32`), keep CHIMERA_METRICS_HOST on "
        "127.0.0.1, or set CHIMERA_METRICS_PORT=0"
    )


def wsgi_app(settings: Settings) -> WsgiApp:
    """``GET /metrics`` of this process's registry, behind the operator tokens."""
    accepted = bearer.operator_tokens(settings)
    exposition = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"not found: this listener serves {PATH} only\n".encode()]
        if not bearer.presents(environ.get("HTTP_AUTHORIZATION"), accepted):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="chimera"')],
            )
            wanted = f"Authorization: Bearer <{bearer.OPERATOR_TOKENS}>"
            return [f"a valid bearer token is required: {wanted}\n".encode()]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class MetricsServer:
    """A started listener; ``close`` stops it."""

    def __init__(self, httpd: WSGIServer, component: str) -> None:
        self.httpd = httpd
        self.component = component
        host, port = httpd.server_address[:2]
        self.url = url(str(host), int(port))
        self._thread = threading.Thread(
            target=httpd.serve_forever, name=f"metrics-{component}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(settings: Settings, component: str) -> MetricsServer | None:
    """Serve this process's ``/metrics`` where the settings say (None when the port is 0).

    Raises ``ConfigError`` for an open network address or a port that cannot be bound.
    """
    if settings.metrics_port == 0:
        return None
    check_bind(settings)
    host, port = settings.metrics_host, settings.metrics_port

    class Server(ThreadingWSGIServer):
        """Bound with the family of ``host`` (IPv4 or IPv6)."""

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        Server.address_family, sockaddr = infos[0][0], infos[0][4]
        httpd = make_server(
            str(sockaddr[0]), port, wsgi_app(settings), Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise ConfigError(
            f"invalid configuration:\n  CHIMERA_METRICS_PORT: the {component}'s /metrics cannot "
            f"listen on {url(host, port)} ({exc.strerror or exc}): each process on a host needs "
            "its own CHIMERA_METRICS_PORT (or 0 to serve none)"
        ) from exc
    server = MetricsServer(httpd, component)
    log.info("the %s serves its metrics on %s", component, server.url)
    return server
