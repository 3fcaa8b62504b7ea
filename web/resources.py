"""What the views of one app share: settings, the database engine, the readiness
checks and the fleet collector.

Made once per app.  gunicorn imports the app in each worker after fork, so no
pool or socket crosses a ``fork()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine

from chimera.conversation.repository import ConversationRepository
from chimera.db.engine import make_engine
from chimera.fleet_metrics import FleetCollector
from chimera.readiness import Readiness
from chimera.settings import Settings

EXTENSION = "chimera"


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: Engine
    readiness: Readiness
    fleet: FleetCollector
    conversations: ConversationRepository

    def close(self) -> None:
        self.fleet.close()
        self.readiness.close()
        self.engine.dispose()


def init_app(app: Flask, settings: Settings) -> Resources:
    engine = make_engine(settings)
    res = Resources(
        settings=settings,
        engine=engine,
        readiness=Readiness(settings, engine=engine),
        fleet=FleetCollector(settings, engine=engine),
        conversations=ConversationRepository(engine),
    )
    app.extensions[EXTENSION] = res
    return res


def resources(app: Flask | None = None) -> Resources:
    """The resources of ``app`` (default: the app handling the current request)."""
    res: Resources = (app or current_app).extensions[EXTENSION]
    return res
