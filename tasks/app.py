"""The Celery app factory."""

from __future__ import annotations

from celery import Celery

from tasks import broker


def create_app() -> Celery:
    """The Chimera Celery app, configured from ``celeryconfig`` (i.e. the settings)."""
    broker.install()  # a worker that survives a Redis restart
    app = Celery("chimera")
    app.config_from_object("celeryconfig")
    return app
