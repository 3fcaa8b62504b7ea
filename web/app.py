"""The Flask app factory (``gunicorn 'web:create_app()'``)."""

from __future__ import annotations

from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from chimera import tracing
from chimera.settings import Settings, get_settings
from web import analyze, auth, errors, health, limits, metrics, reads, resources


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    app = Flask("chimera")
    app.config["CHIMERA_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    errors.register(app)
    res = resources.init_app(app, settings)
    # Request hooks run in this order: timing first, so refused requests are counted too.
    metrics.init_app(app, res.fleet)
    auth.init_app(app, settings)
    limits.init_app(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(reads.bp)
    app.register_blueprint(analyze.bp)
    if tracing.setup(settings, "web") is not None:
        # A server span per request, continuing a caller's traceparent.
        app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def close_app(app: Flask) -> None:
    """Release the app's connections and threads (tests; servers just exit)."""
    resources.resources(app).close()
