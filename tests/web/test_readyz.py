"""GET /readyz against real Redis, Postgres and Kafka, and a worker's heartbeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from chimera import heartbeat
from chimera.settings import Settings, normalize_database_url
from tests.helpers import free_port, wait_for


def test_ready_when_every_dependency_answers_and_a_worker_reported(
    client: FlaskClient, redis_client: Any, web_settings: Settings
) -> None:
    heartbeat.beat(redis_client, web_settings, "worker", instance="w1@host")
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"redis", "postgres", "kafka", "worker"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["latency_ms"] >= 0
        assert check["detail"]
    assert "1 live worker (w1@host)" in body["checks"]["worker"]["detail"]
    assert web_settings.kafka_bootstrap_servers in body["checks"]["kafka"]["detail"]
    assert response.headers["Cache-Control"] == "no-store"


def test_not_ready_without_a_worker_heartbeat(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    worker = body["checks"]["worker"]
    assert worker["ok"] is False
    assert "no Celery worker has reported" in worker["error"]
    assert all(body["checks"][name]["ok"] for name in ("redis", "postgres", "kafka"))


def test_an_expired_heartbeat_does_not_count(
    client: FlaskClient, redis_client: Any, web_settings: Settings
) -> None:
    heartbeat.beat(redis_client, web_settings, "worker", instance="old", ttl_s=1)
    wait_for(
        lambda: not redis_client.exists(web_settings.redis_key("heartbeat", "worker", "old")),
        what="the heartbeat to expire",
    )
    assert client.get("/readyz").get_json()["checks"]["worker"]["ok"] is False


def test_not_ready_when_redis_is_down_and_no_secret_shows(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    dead = web_settings.model_copy(
        update={"redis_port": free_port(), "redis_password": SecretStr("hunter2-redis-pw")}
    )
    response = make_app(dead).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"]["ok"] is False
    assert "does not answer" in body["checks"]["redis"]["error"]
    assert body["checks"]["worker"]["ok"] is False  # heartbeats live in Redis too
    assert body["checks"]["postgres"]["ok"] is True
    assert "hunter2-redis-pw" not in response.get_data(as_text=True)


def test_not_ready_when_postgres_is_down_and_its_password_never_shows(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    url = f"postgresql://postgres:s3cret-db-pw@127.0.0.1:{free_port()}/chimera"
    dead = web_settings.model_copy(update={"database_url": SecretStr(normalize_database_url(url))})
    response = make_app(dead).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["postgres"]["ok"] is False
    assert "Postgres does not answer" in body["checks"]["postgres"]["error"]
    assert "s3cret-db-pw" not in response.get_data(as_text=True)


def test_an_unreachable_kafka_fails_fast(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    dead = web_settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    response = make_app(dead).test_client().get("/readyz")
    assert response.status_code == 503
    kafka = response.get_json()["checks"]["kafka"]
    assert kafka["ok"] is False
    assert "unreachable" in kafka["error"] or "no answer" in kafka["error"]


def test_readyz_needs_no_token_but_its_details_do(
    make_app: Callable[[Settings], Flask], web_settings: Settings
) -> None:
    guarded = web_settings.model_copy(update={"api_token": SecretStr("tok-abcdef")})
    client = make_app(guarded).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not_ready"}
    detailed = client.get("/readyz", headers={"Authorization": "Bearer tok-abcdef"})
    assert detailed.status_code == 503
    assert detailed.get_json()["checks"]["worker"]["ok"] is False
