"""A dead letter replayed with `chimera dlq replay` runs again, through the real bridge
and worker, and pays only for what had failed."""

from __future__ import annotations

from typing import Any

import pytest

from chimera.events.ids import conversation_id, run_id
from chimera.events.replay import replay
from chimera.events.replay_plan import Filters
from chimera.settings import Settings
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION, produce
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app


def bridged(flow: Flow, kafka_topics: Settings) -> Settings:
    """The session's settings (the worker's output and DLQ topics) with this test's
    own input topics and consumer group, so the bridge reads only this test's records."""
    return flow.settings.model_copy(
        update={
            "topic_conversation_new": kafka_topics.topic_conversation_new,
            "topic_analysis_tasks": kafka_topics.topic_analysis_tasks,
            "kafka_consumer_group_id": f"replay-{kafka_topics.topic_conversation_new}",
        }
    )


def test_a_failed_conversation_runs_again_from_its_replayed_dead_letter(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any
) -> None:
    s = bridged(flow, kafka_topics)
    sim_calls.add_fault("bad_request", provider="google", count=1)
    event = flow.event(min_turns=4, max_turns=4)
    eid, cid = event["event_id"], conversation_id(event["event_id"])
    produce(s, s.topic_conversation_new, [(eid, event)])
    bridge = run_bridge(s)

    failed = flow.wait(cid, status="failed")
    assert failed.turn_count == 1  # turn 0 (anthropic) ok, turn 1 (google) refused
    (letter,) = flow.messages(s.topic_conversation_dlq, eid, count=1)
    assert dict(letter.headers)["x-original-topic"] == s.topic_conversation_new.encode()
    calls_before = sim_calls.calls().total

    report = replay(s, s.topic_conversation_dlq, filters=Filters(event_id=eid), engine=flow.engine)

    assert report.replayed == 1, report.summary()
    bridge.wait_for(lambda: bridge.stats.handed_off == 2, what="the replayed event's hand-off")
    done = flow.wait(cid)
    turns = flow.turns(cid)
    assert done.turn_count == len(turns) == 4 and done.error is None
    assert [t.turn_index for t in turns] == [0, 1, 2, 3]
    assert flow.event_status(eid) == "done"
    # Turn 0 was kept: only the three turns from the failed one on were paid for.
    assert sim_calls.calls().total == calls_before + 3
    assert [c.status for c in flow.llm_calls(cid, count=4)].count("ok") == 4
    (completed,) = [
        v
        for v in flow.values(flow.messages(s.topic_conversation_completed, cid, count=2))
        if v["event_type"] == "conversation.completed"
    ]
    assert completed["turn_count"] == 4

    # The event is done: a second replay of its dead letter is refused, nothing reruns.
    again = replay(s, s.topic_conversation_dlq, filters=Filters(event_id=eid), engine=flow.engine)
    assert again.replayed == 0
    assert [o.detail for o in again.outcomes] == ["the event is done"]
    assert sim_calls.calls().total == calls_before + 3


def test_a_failed_analysis_runs_again_from_its_replayed_dead_letter(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, sim_calls: Any
) -> None:
    s = bridged(flow, kafka_topics)
    sim_calls.add_fault("bad_request", count=4)
    event = flow.analysis_event()
    eid, rid = event["event_id"], run_id(event["event_id"])
    produce(s, s.topic_analysis_tasks, [(event["context_id"], event)])
    bridge = run_bridge(s)

    assert flow.wait_run(rid).status == "failed"
    flow.wait_event(eid, "dead_lettered")
    assert sim_calls.calls().total == 4
    sim_calls.reset(config=True)

    report = replay(s, s.topic_analysis_dlq, filters=Filters(event_id=eid), engine=flow.engine)

    assert report.replayed == 1, report.summary()
    bridge.wait_for(lambda: bridge.stats.handed_off == 2, what="the replayed event's hand-off")
    flow.wait_event(eid, "done")
    (row,) = flow.runs_of(eid)
    assert row.status == "ok"
    assert set(row.bundle["worker_statuses"].values()) == {"ok"}
    assert sim_calls.calls().total == 4
