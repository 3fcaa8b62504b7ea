"""Fixtures of the fault-injection suite: a stack around servers the test owns.

Nothing here is autouse: a test gets servers and processes only by asking for
``stack`` (or ``private_postgres``), and every one is stopped after it, failed
or not.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera.db.engine import make_engine
from chimera.settings import normalize_database_url
from tests.reliability.harness.kafka_proxy import ProxiedBroker
from tests.reliability.harness.servers import PrivatePostgres, PrivateRedis
from tests.reliability.harness.stack import Stack


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own that it may kill, pause or wipe."""
    server = PrivateRedis(workdir / "redis")
    server.start()
    yield server
    server.close()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A Postgres cluster of this test's own (initdb + pg_ctl), migrated; removed after."""
    from tests.conftest import PROJECT_ROOT

    cluster = PrivatePostgres()
    try:
        cluster.start()
        cluster.migrate(PROJECT_ROOT)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def proxied_kafka(kafka_topics: Any, workdir: Path) -> Iterator[tuple[Any, ProxiedBroker]]:
    """A Kafka broker of this test's own behind a proxy that can cut or delay it; yields
    settings pointing at the proxy (the test's topics created there) and the broker."""
    from chimera.kafka.broker import wait_until_ready
    from chimera.kafka.topics import ensure_topics

    broker = ProxiedBroker(workdir / "kafka.log")
    try:
        settings = kafka_topics.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
        wait_until_ready(settings, 60.0, broker.proc)
        ensure_topics(settings)
        yield settings, broker
    finally:
        broker.close()


@pytest.fixture
def make_stack(
    kafka_topics: Any, db: Any, sim_calls: Any, private_redis: PrivateRedis, workdir: Path
) -> Iterator[Callable[..., Stack]]:
    """Factory: a stack on the private Redis, the session's test database (or another
    database given by URL) and this test's topics; its processes are killed after."""
    made: list[tuple[Stack, Any]] = []

    def build(*, database_url: str | None = None, base: Any = None, **overrides: Any) -> Stack:
        url = database_url or kafka_topics.database_url.get_secret_value()
        settings = (base or kafka_topics).model_copy(update={})
        engine = db
        if database_url is not None:
            engine = make_engine(settings, url=normalize_database_url(url))
        stack = Stack(
            settings,
            workdir=workdir / f"stack-{secrets.token_hex(2)}",
            redis=private_redis,
            engine=engine,
            database_url=url,
            **overrides,
        )
        made.append((stack, engine if engine is not db else None))
        return stack

    yield build
    for stack, own_engine in made:
        stack.close()
        if own_engine is not None:
            own_engine.dispose()
