"""The Flask app factory (``gunicorn 'web:create_app()'``)."""

from __future__ import annotations

from flask import Flask

from chimera.settings import Settings, get_settings
from web import errors, health


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask("chimera")
    app.config["CHIMERA_SETTINGS"] = settings or get_settings()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    errors.register(app)
    app.register_blueprint(health.bp)
    return app
