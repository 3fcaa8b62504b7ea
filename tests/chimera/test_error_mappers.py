"""The three library mappers against the real stores: what a retry can fix is
``*Unavailable`` (retryable), what the store refuses as sent is ``DataRejected``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, create_engine, text
from sqlalchemy.dialects.postgresql import JSONB

from chimera.db.errors import database_errors
from chimera.errors import (
    DatabaseUnavailable,
    DataRejected,
    KafkaUnavailable,
    RecordTooLarge,
    RedisUnavailable,
    is_retryable,
)
from chimera.kafka.clients import make_producer, publish
from chimera.kafka.errors import kafka_error, kafka_errors
from chimera.redis_errors import redis_errors

# --- Postgres -------------------------------------------------------------------------------


@pytest.fixture
def table(db: Engine) -> Iterator[Table]:
    """A scratch table of this test's own: a primary key, text, a smallint, JSONB."""
    from sqlalchemy import SmallInteger

    meta = MetaData()
    scratch = Table(
        f"mapper_{secrets.token_hex(3)}",
        meta,
        Column("id", Integer, primary_key=True),
        Column("body", Text),
        Column("small", SmallInteger),
        Column("doc", JSONB),
    )
    meta.create_all(db)
    yield scratch
    meta.drop_all(db)


def _insert(db: Engine, table: Table, **values: Any) -> None:
    with database_errors("cannot record 1 event(s)", event_id="e-1"), db.begin() as conn:
        conn.execute(table.insert().values(**values))


def test_a_nul_in_text_is_rejected_not_retried(db: Engine, table: Table) -> None:
    with pytest.raises(DataRejected) as caught:
        _insert(db, table, id=1, body="a\x00b")
    assert not is_retryable(caught.value)
    assert caught.value.message.startswith("cannot record 1 event(s): ")
    assert caught.value.ids == {"event_id": "e-1"}
    assert "NUL" in str(caught.value)


def test_a_nul_escape_in_jsonb_is_rejected(db: Engine, table: Table) -> None:
    with pytest.raises(DataRejected) as caught:
        _insert(db, table, id=1, doc={"k": "a\x00b"})
    assert isinstance(caught.value.__cause__, Exception)
    assert not is_retryable(caught.value)


def test_a_number_out_of_range_is_rejected(db: Engine, table: Table) -> None:
    with pytest.raises(DataRejected):
        _insert(db, table, id=1, small=1_000_000)


def test_a_constraint_violation_is_rejected(db: Engine, table: Table) -> None:
    _insert(db, table, id=1, body="first")
    with pytest.raises(DataRejected) as caught:
        _insert(db, table, id=1, body="second")
    assert "duplicate key" in str(caught.value)
    with db.connect() as conn:  # the first row is untouched
        assert conn.execute(text(f"SELECT body FROM {table.name}")).scalar_one() == "first"


def test_a_value_that_cannot_be_bound_is_rejected(db: Engine, table: Table) -> None:
    with pytest.raises(DataRejected):
        _insert(db, table, id=1, doc={"k": object()})


def test_a_closed_port_is_an_outage() -> None:
    engine = create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:1/postgres",
        connect_args={"connect_timeout": 2},
    )
    try:
        with (
            pytest.raises(DatabaseUnavailable) as caught,
            database_errors("cannot read a conversation", conversation_id="c-1"),
            engine.connect() as conn,
        ):
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert is_retryable(caught.value)
    assert caught.value.ids == {"conversation_id": "c-1"}


def test_a_statement_timeout_is_an_outage(db: Engine) -> None:
    with (
        pytest.raises(DatabaseUnavailable),
        database_errors("slow", brief=True),
        db.begin() as conn,
    ):
        conn.execute(text("SET LOCAL statement_timeout = 1"))
        conn.execute(text("SELECT pg_sleep(1)"))


def test_other_errors_pass_through_untouched(db: Engine) -> None:
    with pytest.raises(ValueError, match="not ours"), database_errors("x"):
        raise ValueError("not ours")


# --- Redis --------------------------------------------------------------------------------------


def test_redis_on_a_closed_port_is_an_outage() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=2)
    try:
        with pytest.raises(RedisUnavailable) as caught, redis_errors("cannot load state"):
            client.get("k")
    finally:
        client.close()
    assert is_retryable(caught.value)
    assert caught.value.message.startswith("cannot load state: ")


def test_wrongtype_is_rejected(redis_client: redis.Redis, redis_ns: Any) -> None:
    key = redis_ns.redis_key("mapper", "list")
    redis_client.rpush(key, "x")
    with pytest.raises(DataRejected) as caught, redis_errors("cannot load state", run_id="r-1"):
        redis_client.get(key)
    assert "WRONGTYPE" in str(caught.value)
    assert not is_retryable(caught.value)
    assert redis_client.lrange(key, 0, -1) == ["x"]


def test_a_script_error_is_rejected(redis_client: redis.Redis) -> None:
    with pytest.raises(DataRejected), redis_errors("rate limiter unavailable"):
        redis_client.eval("return nosuchvariable.field", 0)


def test_a_value_redis_py_cannot_send_is_rejected(redis_client: redis.Redis, redis_ns: Any) -> None:
    with pytest.raises(DataRejected), redis_errors("cannot store state"):
        redis_client.set(redis_ns.redis_key("mapper", "none"), None)  # type: ignore[arg-type]


def test_an_unnamed_error_reply_stays_an_outage(redis_client: redis.Redis) -> None:
    with pytest.raises(RedisUnavailable), redis_errors("circuit breaker unavailable"):
        redis_client.eval("return redis.error_reply('SOMETHING odd')", 0)


# --- Kafka --------------------------------------------------------------------------------------


def test_a_producer_to_a_closed_port_is_an_outage(settings: Any) -> None:
    closed = settings.model_copy(
        update={"kafka_bootstrap_servers": "127.0.0.1:1", "kafka_request_timeout_ms": 1_000}
    )
    with pytest.raises(KafkaUnavailable) as caught:
        make_producer(closed)
    assert is_retryable(caught.value)
    assert caught.value.message.startswith("cannot create a Kafka producer: ")


def test_a_record_over_the_producer_limit_is_too_large(kafka_topics: Any) -> None:
    producer = make_producer(kafka_topics, max_request_size=1_024)
    try:
        topic = kafka_topics.topic_conversation_turn
        with pytest.raises(RecordTooLarge) as caught:
            publish(producer, topic, "k", b"x" * 4_096)
        assert isinstance(caught.value, DataRejected)
        assert not is_retryable(caught.value)
        assert caught.value.dlq_reason == "data_rejected"
        publish(producer, topic, "k", b"small").get(timeout=30)  # the producer still works
    finally:
        producer.close()


@pytest.mark.parametrize("error", [KafkaTimeoutError(), NotLeaderForPartitionError()])
def test_retriable_kafka_errors_are_outages(error: Exception) -> None:
    assert type(kafka_error("cannot poll Kafka", error)) is KafkaUnavailable  # type: ignore[arg-type]


def test_kafka_errors_keep_the_cause() -> None:
    cause = KafkaTimeoutError("slow")
    with pytest.raises(KafkaUnavailable) as caught, kafka_errors("cannot poll Kafka"):
        raise cause
    assert caught.value.__cause__ is cause
