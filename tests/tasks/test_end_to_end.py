"""Kafka in, Kafka out: the bridge, the worker, Postgres and the simulator together."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chimera.events.ids import conversation_id, run_id
from chimera.settings import Settings
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import (
    CELERYCONFIG_DEPRECATION,
    produce,
    read_topic,
)
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app


def test_a_kafka_event_becomes_a_stored_and_published_conversation(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any
) -> None:
    """The bridge reads this test's input topic; the session worker runs the chain and
    publishes to the session's output topics."""
    group = f"e2e-{kafka_topics.topic_conversation_new}"
    s = kafka_topics.model_copy(update={"kafka_consumer_group_id": group})
    event = flow.event(min_turns=5, max_turns=10)
    cid = conversation_id(event["event_id"])
    produce(
        s,
        s.topic_conversation_new,
        [
            (event["event_id"], event),
            (event["event_id"], event),  # a redelivery: acknowledged, no new work
            ("poison", b"{not json"),
            (event["event_id"], event),
        ],
    )
    bridge = run_bridge(s)

    row = flow.wait(cid)
    turns = flow.turns(cid)
    assert 5 <= row.turn_count == len(turns) <= 10
    assert all(a.speaker != b.speaker for a, b in itertools.pairwise(turns))
    assert flow.event_status(event["event_id"]) == "done"

    # Paid once: one LLM call per turn although the event arrived three times.
    assert sim_calls.calls().total == len(turns)
    assert len(flow.llm_calls(cid, count=len(turns))) == len(turns)

    (done,) = flow.values(flow.messages(flow.settings.topic_conversation_completed, cid, count=1))
    assert done["event_type"] == "conversation.completed"
    assert done["source_event_id"] == event["event_id"]
    assert [t["content"] for t in done["transcript"]] == [t.content for t in turns]

    # The poison record is dead-lettered with its reason and the bridge went on.
    (dead,) = read_topic(s, s.topic_conversation_dlq, at_least=1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-reason"] == "invalid_json"
    assert headers["x-original-topic"] == s.topic_conversation_new
    bridge.wait_for(lambda: bridge.stats.consumed == 4, what="all four records consumed")
    stats = bridge.stop()
    assert stats.duplicates == 2
    assert stats.dead_lettered == {"invalid_json": 1}
    assert dead.value == b"{not json"


def test_a_kafka_analysis_event_becomes_one_recorded_and_published_run(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any
) -> None:
    group = f"e2e-{kafka_topics.topic_analysis_tasks}"
    s = kafka_topics.model_copy(update={"kafka_consumer_group_id": group})
    event = flow.analysis_event()
    produce(
        s,
        s.topic_analysis_tasks,
        [(event["context_id"], event), (event["context_id"], event)],  # and a redelivery
    )
    bridge = run_bridge(s)
    row = flow.wait_run(run_id(event["event_id"]))
    assert row.status == "ok" and row.source == "kafka"
    assert set(row.bundle["worker_statuses"].values()) == {"ok"}
    flow.wait_event(event["event_id"], "done")
    assert len(flow.runs_of(event["event_id"])) == 1
    assert sim_calls.calls().total == 4
    (done,) = flow.values(
        flow.messages(flow.settings.topic_analysis_completed, event["context_id"], count=1)
    )
    assert done["run_id"] == row.id and done["source_event_id"] == event["event_id"]
    assert done["bundle"]["summary"] == row.bundle["summary"]
    bridge.wait_for(lambda: bridge.stats.consumed == 2, what="both records consumed")
    assert bridge.stop().duplicates == 1
