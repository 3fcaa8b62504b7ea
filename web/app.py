"""The Flask app factory (``gunicorn 'web:create_app()'``)."""

from __future__ import annotations

import logging

from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from chimera import tracing
from chimera.exposure import check_bind, check_ray_settings
from chimera.settings import Settings, get_settings
from web import analyze, auth, errors, health, hosts, jobs, limits, metrics, reads, resources

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """The app for ``settings``; refuses (``ConfigError``) to serve every route openly on
    a network address, or to hand analyses to a remote Ray without its token."""
    settings = settings or get_settings()
    warning = check_bind(settings)
    if warning is not None:
        log.warning("%s", warning)
    check_ray_settings(settings)
    app = Flask("chimera")
    app.config["CHIMERA_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    errors.register(app)
    res = resources.init_app(app, settings)
    # Request hooks run in this order: timing first, so refused requests are counted
    # too; then the Host check, so a rebound name learns nothing, not even a 401.
    metrics.init_app(app, res.fleet)
    hosts.init_app(app, settings)
    auth.init_app(app, settings)
    limits.init_app(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(reads.bp)
    app.register_blueprint(analyze.bp)
    app.register_blueprint(jobs.bp)
    if tracing.setup(settings, "web") is not None:
        # A server span per request, continuing a caller's traceparent.
        app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def close_app(app: Flask) -> None:
    """Release the app's connections and threads (tests; servers just exit)."""
    resources.resources(app).close()
