"""``GET /metrics``: this process's metrics, the fleet's figures, and request timing.

One scrape reports two kinds of figure.  The process's own registry (LLM calls
made here, HTTP requests served) and the fleet collector, which reads what every
worker did from the shared stores.  Under gunicorn with several workers,
prometheus_client's multiprocess mode (set up by ``web/gunicorn_conf.py``) sums
the workers' own figures, so any worker can answer a scrape.  With an API or a
metrics token set, a scrape needs one (``web.auth``): the figures show spend and
queue depths.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, values
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from chimera import metrics
from chimera.fleet_metrics import FleetCollector

bp = Blueprint("metrics", __name__)

_REGISTRY_KEY = "chimera.metrics_registry"


class _ProcessMetrics:
    """This process's default registry, as one collector of the scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_mode() -> bool:
    """True when prometheus_client keeps values in per-process files (decided at its import)."""
    return values.ValueClass is not values.MutexValue


def scrape_registry(fleet: FleetCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    # The fleet first: reading the stores updates process metrics (scrape errors)
    # that this same scrape should report.
    registry.register(fleet)
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessMetrics())
    return registry


def init_app(app: Flask, fleet: FleetCollector) -> None:
    """Serve /metrics from ``fleet`` plus this process, and time every request."""
    app.extensions[_REGISTRY_KEY] = scrape_registry(fleet)
    app.before_request(_start_timer)
    app.after_request(_count)


def _start_timer() -> None:
    g.chimera_started = time.perf_counter()


def _count(response: Response) -> Response:
    endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
    metrics.HTTP_REQUESTS.labels(endpoint, str(response.status_code)).inc()
    started = g.get("chimera_started")
    if started is not None:
        metrics.HTTP_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


@bp.get("/metrics", endpoint="metrics")
def metrics_view() -> Response:
    registry: CollectorRegistry = current_app.extensions[_REGISTRY_KEY]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
