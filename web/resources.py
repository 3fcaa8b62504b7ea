"""What the views of one app share: settings, the database engine, the readiness
checks, the fleet collector, one Kafka producer and one send-only Celery client.

Made once per app.  gunicorn imports the app in each worker after fork, so no
pool or socket crosses a ``fork()``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app
from kafka import KafkaProducer
from sqlalchemy import Engine

from chimera.conversation.repository import ConversationRepository
from chimera.db.engine import make_engine
from chimera.fleet_metrics import FleetCollector
from chimera.kafka.clients import make_producer
from chimera.readiness import Readiness
from chimera.settings import Settings
from chimera.stack.checks import celery_client

EXTENSION = "chimera"


class SharedProducer:
    """One Kafka producer per app (per web process), made at its first use, so an app
    starts while the broker is away and no request pays for a connection of its own.
    ``KafkaProducer`` is thread-safe: every request thread shares it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(self._settings)
            return self._producer

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: Engine
    readiness: Readiness
    fleet: FleetCollector
    conversations: ConversationRepository
    producer: SharedProducer
    #: Sends tasks by name (a job's feed after a control); connects at its first send.
    celery: Celery

    def close(self) -> None:
        self.celery.close()
        self.producer.close()
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
        producer=SharedProducer(settings),
        celery=celery_client(settings),
    )
    app.extensions[EXTENSION] = res
    return res


def resources(app: Flask | None = None) -> Resources:
    """The resources of ``app`` (default: the app handling the current request)."""
    res: Resources = (app or current_app).extensions[EXTENSION]
    return res
