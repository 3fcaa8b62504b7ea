"""A restart of the local Kafka broker, and the storage engines its build has.

The bundled Tansu has no PostgreSQL engine (pinned below: that is why the local
stack keeps records in S3).  On ``s3://`` storage, against a moto S3 server of the
test's own, the broker is killed and started again under a running stack: the
bridge and the workers reconnect by themselves, and nothing is lost or done twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition

from chimera.db import admin
from chimera.kafka import broker
from chimera.kafka.clients import make_consumer, make_producer
from chimera.kafka.topics import ensure_topics, list_topics
from chimera.stack import objectstore
from tests.helpers import free_port, wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.results import record


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class S3Broker:
    """A moto S3 server and a Tansu on ``s3://`` storage in it, both of this test's own; the
    broker can be killed and started again on the same port and the same bucket."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.s3_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "kafka.log"
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / "s3.log", "ab") as log:
            self.s3 = subprocess.Popen(
                objectstore.server_argv(self.s3_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            wait_for(
                lambda: self.s3.poll() is None and objectstore.is_ready(self.endpoint),
                timeout_s=60,
                interval_s=0.2,
                what="the S3 server",
            )
            objectstore.create_bucket(self.endpoint)
        except BaseException:
            self.close()
            raise

    def start(self, settings: Any) -> None:
        self.proc = broker.start_broker(
            "127.0.0.1",
            self.port,
            self.log_path,
            storage=broker.s3_storage(objectstore.BUCKET),
            env=broker.s3_env(self.endpoint),
        )
        broker.wait_until_ready(settings, 60.0, self.proc)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        assert self.proc is not None
        return _stop(self.proc, sig)

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        _stop(self.s3)


@pytest.fixture
def s3_kafka(kafka_topics: Any, workdir: Path) -> Iterator[tuple[Any, S3Broker]]:
    """Settings pointing at this test's own broker on S3 storage (its topics created there),
    and the broker."""
    own = S3Broker(workdir / "s3-kafka")
    try:
        settings = kafka_topics.model_copy(update={"kafka_bootstrap_servers": own.bootstrap})
        own.start(settings)
        ensure_topics(settings)
        yield settings, own
    finally:
        own.close()


def event_ids_on(settings: Any, topics: list[str]) -> set[str]:
    """The ``event_id`` of every record on ``topics``, read from the beginning."""
    consumer = make_consumer(settings, fetch_max_wait_ms=50)
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
        found: set[str] = set()
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, "records not readable"
            for batch in consumer.poll(timeout_ms=500).values():
                found |= {json.loads(r.value)["event_id"] for r in batch}
        return found
    finally:
        consumer.close()


@pytest.mark.subprocess_worker
@pytest.mark.timeout(400)
def test_broker_killed_mid_run_on_s3_storage_loses_nothing_and_everyone_reconnects(
    make_stack: Any, s3_kafka: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """SIGKILL of the broker while conversations and analyses are in flight, started again
    8 s later (past the group's 6 s session timeout) on the same port and bucket.  Everything produced before is read back after;
    the bridge and the workers (never restarted) reconnect; every event is done once."""
    settings, own = s3_kafka
    sim_calls.configure(ttft_ms=200)
    stack = make_stack(base=settings)
    stack.start_all()
    pids = {p.name: p.pid for p in stack.processes}
    before = stack.produce_mixed_and_wait_in_flight(sim_calls)
    baseline = stack.rss()
    calls_at_kill = sim_calls.calls().count(status=200)
    inputs = [settings.topic_conversation_new, settings.topic_analysis_tasks]

    assert own.kill(signal.SIGKILL) == -signal.SIGKILL
    killed_at = time.monotonic()
    time.sleep(8)  # refused connections, failed publishes, the session timeout passes
    own.start(settings)
    restarted_at = time.monotonic()
    down_s = restarted_at - killed_at

    # What was acknowledged before the kill is there after it: the broker kept it in S3.
    assert set(before) <= event_ids_on(settings, inputs)
    # The bridge takes new events again, on its own: measured to the probe's inbox row.
    probe = stack.produce_conversations(1, min_turns=2, max_turns=2)
    wait_for(lambda: bool(stack.statuses(probe)), timeout_s=120, what="the bridge to resume")
    resumed_s = time.monotonic() - restarted_at
    after = probe + stack.produce_analyses(1)
    ids = before + after
    stack.wait_settled(ids, timeout_s=240)
    settled_s = time.monotonic() - restarted_at

    wait_for(lambda: invariants.consumer_lag(stack) == 0, timeout_s=60, what="no lag")
    report = invariants.check(
        stack, sim_calls, event_ids=ids, allowed_dead_letters=set(), rss_baseline=baseline
    )
    assert report.done == len(ids) and report.lost == 0
    # Done once: one result row each, no LLM call paid twice.  Output records are published
    # at least once: one whose ack the kill lost is published again, under the same event_id
    # (invariants.check asserts that), so copies are allowed.
    assert report.duplicate_rows == 0 and report.extra_paid_calls == 0
    assert report.llm_calls_ok == report.steps_stored
    # No process but the broker was restarted: the same pids, all alive.
    assert {p.name: p.pid for p in stack.processes} == pids
    assert all(p.alive() and not p.killed for p in stack.processes)
    assert set(ids) <= event_ids_on(settings, inputs)
    bridge_log = next(p for p in stack.processes if p.name == "bridge0").log()
    worker_log = next(p for p in stack.processes if p.name == "worker0").log()
    record(
        "Kafka broker SIGKILLed and restarted (s3 storage, moto)",
        request.node.name,
        happened="records produced before the kill read back after it; the bridge and the "
        "workers reconnected without a restart; every event done once (outputs whose ack was "
        "lost published again under the same id), no lag",
        broker_down_s=round(down_s, 1),
        bridge_resumed_s=round(resumed_s, 1),
        settled_after_restart_s=round(settled_s, 1),
        calls_paid_at_kill=calls_at_kill,
        bridge_kafka_errors=bridge_log.count("Kafka unavailable"),
        bridge_assignments=bridge_log.count("partitions assigned"),
        worker_kafka_errors=worker_log.count("KafkaUnavailable"),
        **report.as_dict(),
    )


# --- the storage engines of the bundled broker ---------------------------------------------


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
    """Why the local stack keeps records in S3: the bundled build has no PostgreSQL engine."""
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
    """The other engine (CHIMERA_KAFKA_STORAGE=memory): a restart starts empty."""
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
