"""The decisions of the analysis tasks, without Celery: the chord to send, one analysis.

Each runs against the real stores (Redis, Postgres, Kafka) and the LLM simulator;
the plumbing case against a Redis port nothing listens on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select

from chimera.analysis.decisions import ChordToSend, PartDone, attempt_part, dispatch
from chimera.analysis.service import AnalysisService
from chimera.analysis.store import PartStore
from chimera.codec import payload_hash
from chimera.db.tables import Event
from chimera.decisions import RetryLLM, RetryPlumbing
from chimera.errors import ProviderOverloaded, RedisUnavailable
from chimera.events.ids import run_id
from chimera.events.inbox import Inbox, Source
from chimera.events.sink import KafkaEventSink
from chimera.kafka.clients import make_producer
from chimera.llm.registry import build_client
from chimera.models import ANALYSIS_KINDS
from chimera.redis_client import make_redis
from tests.helpers import free_port

SEGMENTS = [
    {"speaker": "Ana", "text": "Cars make cities loud. Everyone knows bans always work."},
    {"speaker": "Ben", "text": "A ban would hurt shops. Ana only says that because she cycles."},
]


@pytest.fixture
def make_service(
    kafka_topics: Any, redis_ns: Any, db: Any, sim_calls: Any
) -> Iterator[Callable[..., AnalysisService]]:
    """Analysis services on this test's own topics and keys (``parts_redis``: another
    Redis for their stored results)."""
    settings = kafka_topics.model_copy(update={"redis_key_prefix": redis_ns.redis_key_prefix})
    client = make_redis(settings)
    llm = build_client(settings, redis_client=client, engine=db)
    producer = make_producer(settings)

    def make(parts_redis: redis.Redis | None = None) -> AnalysisService:
        return AnalysisService(
            settings,
            llm=llm,
            engine=db,
            parts=PartStore(parts_redis or client, settings),
            inbox=Inbox(db),
            sink=KafkaEventSink(producer, settings),
        )

    yield make
    llm.close()
    producer.close(timeout=10)
    client.close()


def submit(service: AnalysisService, **fields: Any) -> str:
    """An accepted analysis event (as the bridge records it); its id."""
    event = {
        "event_id": f"evt-{uuid.uuid4().hex[:12]}",
        "context_id": f"doc-{uuid.uuid4().hex[:8]}",
        "segments": SEGMENTS,
    } | fields
    service.inbox.accept(
        event_id=event["event_id"],
        kind="analysis",
        payload=event,
        payload_hash=payload_hash(event),
        source=Source(service.settings.topic_analysis_tasks, 0, 0),
    )
    return str(event["event_id"])


def inbox_status(db: Any, event_id: str) -> str:
    with db.connect() as conn:
        status = conn.execute(select(Event.status).where(Event.event_id == event_id)).scalar_one()
    return str(status)


def test_the_chord_is_sent_once_unless_resumed(make_service: Any, db: Any) -> None:
    service = make_service()
    event_id = submit(service)
    assert dispatch(service, event_id) == ChordToSend(event_id, run_id(event_id), ANALYSIS_KINDS)
    assert dispatch(service, event_id) is None
    assert dispatch(service, event_id, resume=True) == ChordToSend(event_id, run_id(event_id))
    assert inbox_status(db, event_id) == "dispatched"


def test_input_that_can_never_be_analysed_sends_nothing_and_is_dead_lettered(
    make_service: Any, db: Any
) -> None:
    service = make_service()
    event_id = submit(service, prompt_ids={"summary": "summary.v9"})
    assert dispatch(service, event_id) is None
    assert inbox_status(db, event_id) == "dead_lettered"


def test_an_analysis_returns_its_result_and_a_rerun_pays_nothing(
    make_service: Any, sim_calls: Any
) -> None:
    service = make_service()
    event_id = submit(service)
    assert dispatch(service, event_id) is not None
    done = attempt_part(service, event_id, "summary")
    assert isinstance(done, PartDone)
    assert done.result["kind"] == "summary" and done.result["status"] == "ok"
    assert sim_calls.calls().total == 1
    assert attempt_part(service, event_id, "summary") == done
    assert sim_calls.calls().total == 1


def test_a_retryable_failure_is_retried_then_reported_as_an_error(
    make_service: Any, sim_calls: Any
) -> None:
    service = make_service()
    event_id = submit(service)
    assert dispatch(service, event_id) is not None
    sim_calls.add_fault("overloaded", model="claude-haiku-5-5", count=2)  # the summary's model
    retry = attempt_part(service, event_id, "summary", attempt=1)
    assert isinstance(retry, RetryLLM) and isinstance(retry.error, ProviderOverloaded)
    assert retry.countdown_s > 0
    last = service.settings.analysis_max_retries + 1
    given_up = attempt_part(service, event_id, "summary", attempt=last)
    assert isinstance(given_up, PartDone)
    assert given_up.result["status"] == "error"
    assert given_up.result["error_class"] == "ProviderOverloaded"
    # Kept: a redelivery returns it without calling again.
    calls = sim_calls.calls().total
    assert attempt_part(service, event_id, "summary") == given_up
    assert sim_calls.calls().total == calls


def test_an_analysis_that_keeps_killing_its_worker_reports_an_error_without_running(
    make_service: Any, sim_calls: Any
) -> None:
    service = make_service()
    event_id = submit(service)
    done = attempt_part(service, event_id, "argument", crashes=3)
    assert isinstance(done, PartDone)
    assert done.result["status"] == "error" and done.result["error_class"] == "CrashLoop"
    assert sim_calls.calls().total == 0


def test_plumbing_trouble_is_retried_while_retries_last_then_reported(
    make_service: Any, sim_calls: Any
) -> None:
    away = redis.Redis(port=free_port(), socket_connect_timeout=1, socket_timeout=1)
    service = make_service(parts_redis=away)
    event_id = submit(service)
    retry = attempt_part(service, event_id, "summary")
    assert isinstance(retry, RetryPlumbing) and isinstance(retry.error, RedisUnavailable)
    given_up = attempt_part(service, event_id, "summary", plumbing_retries_left=False)
    assert isinstance(given_up, PartDone)
    # The store is away too: reported without being kept.
    assert given_up.result["status"] == "error"
    assert given_up.result["error_class"] == "RedisUnavailable"
    assert sim_calls.calls().total == 0
    away.close()
