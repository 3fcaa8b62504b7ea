"""Fixtures for the web app: apps on real Redis, Postgres and Kafka, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from chimera.settings import Settings
from web.app import close_app, create_app


@pytest.fixture
def make_app() -> Iterator[Callable[[Settings], Flask]]:
    """Factory: an app for some settings; every one is closed after the test."""
    made: list[Flask] = []

    def make(settings: Settings) -> Flask:
        app = create_app(settings)
        made.append(app)
        return app

    yield make
    for app in made:
        close_app(app)


@pytest.fixture
def web_settings(kafka_broker: Settings, redis_ns: Settings, db: Any) -> Settings:
    """The session's Postgres and Kafka, this test's Redis key prefix; tables emptied after."""
    return redis_ns


@pytest.fixture
def app(make_app: Callable[[Settings], Flask], web_settings: Settings) -> Flask:
    return make_app(web_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in Prometheus text, keyed by its sorted labels."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels``, or None if absent."""
    return samples(text, name).get(tuple(sorted(labels.items())))
