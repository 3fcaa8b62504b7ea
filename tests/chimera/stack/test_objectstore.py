"""The local stack's S3 server: started before the broker, shown by `stack status`, and
holding the broker's records across a broker restart; not run with memory storage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from kafka import TopicPartition

from chimera.kafka.clients import make_consumer, make_producer
from chimera.settings import load_settings
from chimera.stack import objectstore, procs
from tests.chimera.test_cli import chimera
from tests.chimera.test_stack import stack_env  # noqa: F401 - the fixture
from tests.helpers import free_port


@pytest.fixture
def s3_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:  # noqa: F811
    """The stack's own environment, with its S3 server on a free port."""
    yield stack_env | {"CHIMERA_KAFKA_S3_PORT": str(free_port())}


def _lines(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines() if line.strip()}


def _pids(state: Path) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in (state / "run").glob("*.json")}


def _records(settings: Any, topic: str) -> list[bytes]:
    consumer = make_consumer(settings, fetch_max_wait_ms=50)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        out: list[bytes] = []
        for _ in range(20):
            for batch in consumer.poll(timeout_ms=500).values():
                out += [r.value for r in batch]
        return out
    finally:
        consumer.close()


@pytest.mark.subprocess_worker
def test_the_broker_keeps_its_records_in_the_stacks_s3_server(s3_env: dict[str, str]) -> None:
    state = Path(s3_env["CHIMERA_STATE_DIR"])
    settings = load_settings(
        kafka_bootstrap_servers=s3_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_s3_port=int(s3_env["CHIMERA_KAFKA_S3_PORT"]),
        state_dir=state,
    )
    up = chimera("stack", "up", env=s3_env, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        lines = _lines(up.stdout)
        endpoint = objectstore.url(settings)
        assert f"{endpoint}, bucket {objectstore.BUCKET}" in lines["s3"], up.stdout
        assert f"records in S3 bucket {objectstore.BUCKET} at {endpoint}" in lines["kafka"]
        pids = _pids(state)
        # Its own process, loopback only; the broker started with s3:// storage.
        assert psutil.Process(pids["s3"]).cmdline()[1:3] == ["-c", objectstore.MAIN]
        assert {c.laddr.ip for c in psutil.Process(pids["s3"]).net_connections("tcp")} == {
            "127.0.0.1"
        }
        kafka_argv = psutil.Process(pids["kafka"]).cmdline()
        assert kafka_argv[kafka_argv.index("--storage-engine") + 1] == "s3://chimera-kafka/"

        status = chimera("stack", "status", env=s3_env)
        assert status.returncode == 0, status.stdout
        lines = _lines(status.stdout)
        assert " ok " in lines["s3"] and f"bucket {objectstore.BUCKET}:" in lines["s3"]
        assert "objects" in lines["s3"]
        assert "records in S3 bucket" in lines["kafka"], status.stdout

        # Records written before a broker restart are read after it.
        topic = settings.topic_conversation_new
        producer = make_producer(settings)
        try:
            for i in range(20):
                producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()).get(10)
        finally:
            producer.close()
        kafka = procs.read_record(settings.run_dir, "kafka")
        assert kafka is not None
        procs.stop(kafka, run_dir=settings.run_dir, timeout_s=10)
        again = chimera("stack", "up", env=s3_env, timeout=180)
        assert again.returncode == 0, again.stdout + again.stderr
        lines = _lines(again.stdout)
        assert "started" in lines["kafka"] and "0 topics created" in lines["kafka"], again.stdout
        assert "running" in lines["s3"] and "running" in lines["worker"]
        assert sorted(_records(settings, topic)) == sorted(f"v{i}".encode() for i in range(20))
    finally:
        down = chimera("stack", "down", env=s3_env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "s3        stopped" in down.stdout
    assert not psutil.pid_exists(pids["s3"]) or (
        psutil.Process(pids["s3"]).status() == psutil.STATUS_ZOMBIE
    )


def test_memory_storage_runs_no_s3_server(s3_env: dict[str, str]) -> None:
    env = s3_env | {"CHIMERA_KAFKA_STORAGE": "memory"}
    status = chimera("stack", "status", env=env)
    assert "CHIMERA_KAFKA_STORAGE=memory: a broker restart loses its records" in status.stdout
    assert _lines(status.stdout)["s3"].split()[1:3] == ["not", "used"]
