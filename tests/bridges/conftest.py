"""Fixtures for the bridge: its own topics, consumer group and Celery queue per test.

Hand-offs are observed where they land: the messages in the test's Celery queue
on the real Redis broker (no worker consumes that queue).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from kafka import TopicPartition

from bridges.bridge import Bridge
from bridges.options import BridgeOptions
from bridges.stats import Stats
from chimera.kafka.clients import make_consumer, make_producer
from chimera.settings import Settings
from tests.helpers import wait_for

#: Partitions of the test topics (the session default).
PARTITIONS = 3


@dataclass(frozen=True)
class Queued:
    """One message as it sits in the Celery broker."""

    task: str
    id: str
    args: list[Any]
    ignore_result: bool
    #: The W3C trace context the message carries, if any.
    traceparent: str | None = field(default=None, compare=False)


#: celeryconfig sets ``task_acks_on_failure_or_timeout``, which Celery 5.7 schedules for
#: deprecation; loading it into a fresh app (as the bridge does) warns.
CELERYCONFIG_DEPRECATION = (
    "ignore:(?s).*task_acks_on_failure_or_timeout:celery.exceptions.CPendingDeprecationWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION))


@pytest.fixture
def bridge_settings(kafka_topics: Settings, db: Any) -> Iterator[Settings]:
    """Settings with this test's topics, consumer group and Celery queue."""
    token = secrets.token_hex(3)
    scoped = kafka_topics.model_copy(
        update={
            "kafka_consumer_group_id": f"bridge-test-{token}",
            "celery_queue": f"{kafka_topics.celery_queue}-bridge-{token}",
        }
    )
    yield scoped
    client = broker_redis(scoped)
    try:
        for key in queue_keys(scoped):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _keep_current_celery_app() -> Iterator[None]:
    """A Celery app made in a test becomes the thread's current app: put the old one back."""
    from celery import _state

    previous = getattr(_state._tls, "current_app", None)
    yield
    _state._set_current_app(previous)


# --- Celery queue ----------------------------------------------------------------------------


def broker_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.celery_broker_url)


def queue_keys(settings: Settings) -> list[str]:
    """The queue's list and its priority sub-lists, as kombu names them."""
    base = settings.redis_key_prefix + settings.celery_queue
    return [base] + [f"{base}\x06\x16{p}" for p in (3, 6, 9)]


def queued(settings: Settings) -> list[Queued]:
    """Every message waiting in the settings' Celery queue, oldest first."""
    client = broker_redis(settings)
    try:
        raw = [m for key in queue_keys(settings) for m in reversed(client.lrange(key, 0, -1))]
    finally:
        client.close()
    return [parse(item) for item in raw]


def parse(item: bytes) -> Queued:
    """A kombu message as Celery's protocol 2 lays it out."""
    message = json.loads(item)
    headers = message["headers"]
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return Queued(
        headers["task"], headers["id"], args, headers["ignore_result"], headers.get("traceparent")
    )


# --- Kafka -----------------------------------------------------------------------------------


def produce(settings: Settings, topic: str, records: list[tuple[Any, Any]]) -> list[Any]:
    """Send (key, value) pairs in order; value may be bytes, None or a JSON-able object."""
    producer = make_producer(settings)
    try:
        futures = []
        for key, value in records:
            raw = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
            raw_key = key.encode() if isinstance(key, str) else key
            futures.append(producer.send(topic, key=raw_key, value=raw, headers=[("h", b"v")]))
        return [f.get(timeout=10) for f in futures]
    finally:
        producer.close()


def read_topic(
    settings: Settings, topic: str, *, at_least: int = 0, timeout_s: float = 10
) -> list[Any]:
    """Every record of ``topic`` (manual assignment: no group join), by partition and offset."""
    import time

    consumer = make_consumer(settings, fetch_max_wait_ms=50)
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while True:
            batch = consumer.poll(timeout_ms=200)
            for rs in batch.values():
                records.extend(rs)
            if (not batch and len(records) >= at_least) or time.monotonic() > deadline:
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def committed(settings: Settings, topic: str) -> dict[int, int | None]:
    """The group's committed offset of each partition of ``topic`` (read without joining)."""
    consumer = make_consumer(settings, group_id=settings.kafka_consumer_group_id)
    try:
        return {
            p: consumer.committed(TopicPartition(topic, p), timeout_ms=10_000)
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def end_offsets(metadata: list[Any]) -> dict[int, int | None]:
    """What a group that finished every produced record has committed, per partition."""
    ends: dict[int, int | None] = dict.fromkeys(range(PARTITIONS))
    for m in metadata:
        ends[m.partition] = max(ends[m.partition] or 0, m.offset + 1)
    return ends


# --- the bridge in a thread ------------------------------------------------------------------


class RunningBridge:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bridge", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.bridge.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    @property
    def stats(self) -> Stats:
        return self.bridge.stats

    def wait_for(self, condition: Callable[[], Any], *, what: str, timeout_s: float = 60) -> None:
        """Wait for ``condition``; fail at once if the bridge thread died, and say
        what the bridge had done if the time ran out."""

        def check() -> Any:
            if not self.thread.is_alive():
                raise AssertionError(f"the bridge stopped while waiting for {what}") from self.error
            return condition()

        try:
            wait_for(check, timeout_s=timeout_s, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the bridge so far: {self.stats.summary()}") from None

    def stop(self, timeout_s: float = 30) -> Stats:
        self.bridge.stop()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the bridge did not stop"
        if self.error is not None:
            raise self.error
        return self.bridge.stats


@pytest.fixture
def run_bridge() -> Iterator[Callable[..., RunningBridge]]:
    """Factory: start a bridge in a thread; every one is stopped after the test."""
    started: list[RunningBridge] = []

    def start(settings: Settings, **options: Any) -> RunningBridge:
        defaults = {"retry_base_s": 0.2, "retry_cap_s": 1.0, "heartbeat_interval_s": 0.5}
        opts = BridgeOptions.from_settings(settings, **(defaults | options))
        running = RunningBridge(
            Bridge(settings, options=opts, instance=f"test-{secrets.token_hex(2)}")
        )
        started.append(running)
        return running

    yield start
    for running in started:
        with contextlib.suppress(Exception):
            running.stop()


def conversation(event_id: str, title: str = "Should cities ban cars?") -> dict[str, Any]:
    return {"event_id": event_id, "topic": title}


def analysis(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "context_id": f"ctx-{event_id}",
        "segments": [{"speaker": "A", "text": "Cars are loud."}],
    }


# --- the bridge as a process -----------------------------------------------------------------


class BridgeProcess:
    """`python -m bridges` with the test's settings in its environment."""

    def __init__(self, settings: Settings, log_path: Any) -> None:
        import os
        import subprocess
        import sys

        from chimera.settings import to_env
        from tests.conftest import PROJECT_ROOT

        self.log_path = log_path
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CHIMERA_", "KAFKA_", "REDIS_"))
        }
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridges"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env=env | to_env(settings),
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int) -> None:
        import os

        os.killpg(self.proc.pid, signum)

    def wait(self, timeout_s: float = 30) -> int:
        return self.proc.wait(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, (
            f"the bridge exited ({self.proc.returncode}):\n{self.log()}"
        )


@pytest.fixture
def bridge_process(tmp_path: Any) -> Iterator[Callable[[Settings], BridgeProcess]]:
    """Factory: start bridge processes; any still running after the test is killed."""
    import signal

    started: list[BridgeProcess] = []

    def start(settings: Settings) -> BridgeProcess:
        process = BridgeProcess(settings, tmp_path / f"bridge-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.signal(signal.SIGKILL)
            process.wait(10)


class QueueDrainer:
    """Stands in for a worker: takes hand-offs off the test's Celery queue as they arrive."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.taken: list[Queued] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drainer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = broker_redis(self.settings)
        key = queue_keys(self.settings)[0]
        try:
            while not self._stop.wait(0.05):
                while batch := client.rpop(key, 500):
                    self.taken.extend(parse(item) for item in batch)
        finally:
            client.close()

    def stop(self) -> list[Queued]:
        """Stop draining; return every message taken, plus any still queued."""
        self._stop.set()
        self._thread.join(10)
        return self.taken + queued(self.settings)


@pytest.fixture
def drainer(bridge_settings: Settings) -> Iterator[QueueDrainer]:
    drainer = QueueDrainer(bridge_settings)
    yield drainer
    drainer.stop()
