"""Fixtures: real, isolated Redis, Postgres, Kafka and Celery for every test.

Isolation, per session: a fresh database ``chimera_test_<id>``, a Kafka broker
on a free port, a Redis key prefix and a Celery queue of our own.  Per test:
topics with a unique suffix, a Redis key prefix, and tables truncated after.
The session is configured the way production is, through the environment,
before any chimera module reads its settings; worker subprocesses inherit it.

A missing Redis or Postgres fails the tests that need them (it is not a skip).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import free_port, wait_for

RUN_ID = secrets.token_hex(4)
STATE_DIR = Path(tempfile.mkdtemp(prefix=f"chimera-test-{RUN_ID}-"))
#: The session's LLM simulator (started by the ``session_sim`` fixture); every
#: provider of the session's settings, and of its worker processes, points at it.
SIM_PORT = free_port()
SIM_URL = f"http://127.0.0.1:{SIM_PORT}"
TEST_ENV = {
    "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/chimera_test_{RUN_ID}",
    "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    "CHIMERA_REDIS_KEY_PREFIX": f"chimera-test-{RUN_ID}:",
    "CHIMERA_CELERY_QUEUE": f"chimera-test-{RUN_ID}",
    # The topic queue's key is not under the prefix (the ingestion service names it).
    "CHIMERA_TOPICS_QUEUE_KEY": f"chimera-test-{RUN_ID}:topics:queue",
    "CHIMERA_STATE_DIR": str(STATE_DIR),
    "CHIMERA_HEARTBEAT_INTERVAL_S": "2",
    "ANTHROPIC_BASE_URL": SIM_URL,
    "GOOGLE_GEMINI_BASE_URL": SIM_URL,
    "OPENAI_BASE_URL": f"{SIM_URL}/v1",
    "CHIMERA_LLM_TIMEOUT_S": "10",
    # The fleet-wide limiter is shared by the whole session (one Redis prefix): at the
    # production default of 60 a minute, later tests would wait on earlier ones' calls.
    # Tests of the limiter set their own limits.
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "100000",
    # One model per analysis, so a fault can be aimed at one of them.
    "CHIMERA_ANALYSIS_MODELS": json.dumps(
        {
            "summary": {"provider": "anthropic", "model": "claude-haiku-5-5"},
            "argument": {"provider": "google", "model": "gemini-3.1-flash-lite"},
            "implication_sentiment": {"provider": "anthropic", "model": "claude-opus-5-5"},
            "logic_bias": {"provider": "google", "model": "gemini-3.5-flash"},
        }
    ),
    "CHIMERA_ANALYSIS_MAX_RETRIES": "2",
    # The models events may name: the priced ones, the OpenAI-compatible one, the models
    # faults are aimed at, and the short stand-ins of the bad-input tests.
    "CHIMERA_LLM_MODELS": json.dumps(
        {
            "anthropic": [
                "claude-sonnet-5-5",
                "claude-haiku-5-5",
                "claude-opus-5-5",
                "claude-safety-1",
                "claude-poison-1",
            ],
            "google": ["gemini-3.5-flash", "gemini-3.1-flash-lite", "g"],
            "openai": ["llama-3.3-70b", "m", "g"],
        }
    ),
    "CHIMERA_LOG_LEVEL": "INFO",
}
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The machine is shared and noisy: property tests must not fail on wall time.
hypothesis_settings.register_profile(
    "chimera", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150
)
hypothesis_settings.load_profile("chimera")


def delete_keys(settings: Any, prefix: str) -> None:
    """Delete every key under ``prefix`` in the broker, result and state databases."""
    import redis

    for db in {settings.redis_broker_db, settings.redis_result_db, settings.redis_state_db}:
        client = redis.Redis.from_url(settings.redis_url_for(db))
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1_000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        finally:
            client.close()


def pytest_configure(config: pytest.Config) -> None:
    # Before any chimera module reads settings: the suite never touches the
    # developer's real database, queues or topics.
    prefixes = ("CHIMERA_", "KAFKA_", "REDIS_", "ANTHROPIC_", "OPENAI_", "GOOGLE_", "GEMINI_")
    for name in [n for n in os.environ if n.startswith(prefixes)]:
        del os.environ[name]
    os.environ.update(TEST_ENV)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(STATE_DIR, ignore_errors=True)


# --- settings ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings() -> Any:
    from chimera.settings import get_settings

    return get_settings()


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(settings: Any) -> Iterator[None]:
    """Redis answers; at the end of the session every key of ours is deleted."""
    from chimera.errors import RedisUnavailable
    from chimera.stack.checks import check_redis

    try:
        check_redis(settings)
    except RedisUnavailable as exc:
        pytest.fail(f"Redis is required for this test: {exc}", pytrace=False)
    yield
    delete_keys(settings, settings.redis_key_prefix)


@pytest.fixture
def redis_ns(settings: Any, redis_server: None, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Settings whose Redis key prefix is this test's own; keys removed afterwards."""
    prefix = f"{settings.redis_key_prefix}{secrets.token_hex(3)}:"
    scoped = settings.model_copy(update={"redis_key_prefix": prefix})
    yield scoped
    delete_keys(scoped, prefix)


@pytest.fixture
def redis_client(redis_ns: Any) -> Iterator[Any]:
    from chimera.redis_client import make_redis

    client = make_redis(redis_ns)
    yield client
    client.close()


# --- Postgres -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database(settings: Any) -> Iterator[Any]:
    """A fresh database migrated to head for the session; dropped at the end."""
    from chimera.db import admin
    from chimera.db.engine import make_engine
    from chimera.errors import DatabaseUnavailable

    url = settings.database_url.get_secret_value()
    try:
        admin.upgrade(settings)
    except DatabaseUnavailable as exc:
        pytest.fail(f"Postgres is required for this test: {exc}", pytrace=False)
    engine = make_engine(settings)
    yield engine
    engine.dispose()
    admin.drop_database(url)


@pytest.fixture
def db(database: Any, settings: Any) -> Iterator[Any]:
    """The session engine; every table is emptied after the test, and the session's
    near-duplicate index with them (it indexes those rows)."""
    from sqlalchemy import text

    from chimera.db.tables import TABLE_NAMES

    yield database
    with database.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLE_NAMES)} CASCADE"))
    delete_keys(settings, settings.redis_key("neardup", ""))


@pytest.fixture
def scratch_db_url(settings: Any) -> Iterator[str]:
    """The URL of a database that does not exist yet; dropped after the test."""
    from chimera.db import admin

    url = settings.database_url.get_secret_value().rsplit("/", 1)[0]
    url = f"{url}/chimera_scratch_{RUN_ID}_{secrets.token_hex(3)}"
    yield url
    admin.drop_database(url)


# --- Kafka --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_broker(settings: Any) -> Iterator[Any]:
    """A Tansu broker on a free port for the whole session."""
    from chimera.kafka import broker

    host, _, port = settings.kafka_bootstrap_servers.rpartition(":")
    proc = broker.start_broker(host, int(port), STATE_DIR / "logs" / "kafka-test.log")
    try:
        broker.wait_until_ready(settings, 30.0, proc)
        yield settings
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def kafka_topics(kafka_broker: Any) -> Iterator[Any]:
    """Settings whose eight topics are this test's own, created empty; deleted after."""
    from chimera.kafka.topics import delete_topics, ensure_topics

    suffix = secrets.token_hex(3)
    update = {
        f"topic_{role.replace('.', '_')}": f"{name}.{suffix}"
        for role, name in kafka_broker.topics.items()
    }
    scoped = kafka_broker.model_copy(update=update)
    ensure_topics(scoped)
    yield scoped
    delete_topics(scoped, scoped.topics.values())


# --- the LLM simulator --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_sim() -> Iterator[Any]:
    """The simulator the session's settings point every provider at."""
    from llmsim import SimConfig, Simulator

    with Simulator(SimConfig(port=SIM_PORT, seed=11, timeout_fault_delay_s=5.0)) as sim:
        yield sim


@pytest.fixture
def sim_calls(session_sim: Any) -> Iterator[Any]:
    """The session simulator with an empty call log and no faults for this test."""
    session_sim.reset(config=True)
    yield session_sim
    session_sim.reset(config=True)


# --- Celery (embedded worker: pytest-celery's celery.contrib.pytest fixtures) ---------------------------


@pytest.fixture(scope="session")
def celery_config(redis_server: None) -> dict[str, Any]:
    """The production configuration, value for value (celeryconfig.py)."""
    import celeryconfig

    return {k: v for k, v in vars(celeryconfig).items() if not k.startswith("_") and k.islower()}


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    return "threads"


@pytest.fixture(scope="session")
def celery_includes() -> tuple[str, ...]:
    return ("tasks.system", "tasks.conversation", "tasks.analysis", "tasks.periodic")


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    return {"concurrency": 4, "shutdown_timeout": 30.0}


# --- Celery (real worker processes that a test may kill) ----------------------------------------------


class WorkerProcess:
    """A `celery -A tasks.worker worker` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, settings: Any) -> None:
        self.proc = proc
        self.log_path = log_path
        #: The settings this worker runs with (its own queue).
        self.settings = settings

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the worker and everything it started."""
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers."""
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker_process(redis_server: None, settings: Any) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: start real worker processes; each is waited ready and killed after the test.

    Each test's workers consume a queue of their own (``worker.settings``), so the
    session's embedded worker never takes their tasks.
    """
    from chimera.errors import ChimeraError
    from chimera.stack.checks import run_canary

    started: list[WorkerProcess] = []
    queue = f"{settings.celery_queue}-{secrets.token_hex(3)}"
    scoped = settings.model_copy(update={"celery_queue": queue})

    def start(*extra: str, env: dict[str, str] | None = None) -> WorkerProcess:
        n = len(started)
        log_path = STATE_DIR / "logs" / f"worker-{secrets.token_hex(3)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker"]
        argv += ["--loglevel", "INFO", "--hostname", f"test{n}-{RUN_ID}@%h", *extra]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env=os.environ | {"CHIMERA_CELERY_QUEUE": queue} | (env or {}),
                start_new_session=True,
            )
        worker = WorkerProcess(proc, log_path, scoped)
        started.append(worker)

        def ready() -> bool:
            assert proc.poll() is None, f"worker exited early:\n{worker.log()}"
            try:
                run_canary(scoped, timeout_s=2.0)
                return True
            except ChimeraError:
                return False

        wait_for(ready, timeout_s=60, what="the worker to run the canary")
        return worker

    yield start
    for worker in started:
        worker.kill()


# --- Tracing (the SDK with an in-memory exporter, in this process) ----------------------------------


class SpanCollector(SpanProcessor):
    """A span processor that keeps the spans that end while a test listens.

    A process has one tracer provider, with this as its processor; the ``spans``
    fixture turns tracing on for its test and off after it.
    """

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.listening = False

    def on_end(self, span: Any) -> None:
        if self.listening:
            self.exporter.export([span])

    def finished(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture(scope="session")
def span_collector() -> SpanCollector:
    return SpanCollector()


@pytest.fixture
def spans(
    settings: Any, celery_session_worker: Any, span_collector: SpanCollector
) -> Iterator[SpanCollector]:
    """Tracing on in this process (the session worker's tasks included) for the test;
    the spans that ended meanwhile."""
    from chimera import tracing
    from tasks.logcontext import trace_worker

    span_collector.exporter.clear()
    span_collector.listening = True
    assert trace_worker(settings, processor=span_collector)
    yield span_collector
    tracing.stop()
    span_collector.listening = False
    span_collector.exporter.clear()
