"""The topic queue's job: beat's real drain task, the embedded worker, Redis, Postgres,
Kafka and the simulator.  A drained topic's conversation belongs to the queue's job and
counts in its figures; the feeder never feeds or completes it; pausing it stops the drain,
draining or cancelling it is refused; a failed conversation of the queue is replayed from
its dead letter through the real bridge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chimera.conversation.topic_queue import TopicQueue
from chimera.errors import JobConflict
from chimera.events.ids import TOPIC_QUEUE_JOB, conversation_id
from chimera.events.replay import replay
from chimera.events.replay_plan import Filters
from chimera.jobs.control import JobControl
from chimera.jobs.feed import feed_all
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.service import control_job
from chimera.kafka.clients import make_producer
from chimera.redis_client import make_redis
from chimera.settings import Settings
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION
from tests.tasks.conftest import Flow
from tests.tasks.test_replay_reruns import bridged

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)

run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app


@pytest.fixture
def queue(flow: Flow) -> Iterator[TopicQueue]:
    """The session's topic queue (its key is the session's own), empty before and after,
    and no control state of the queue's job left in Redis by another test."""
    client = make_redis(flow.settings)
    queue = TopicQueue(client, flow.settings)
    control = JobControl(client, flow.settings, JobRepository(flow.engine).control_row)
    keys = (queue.key, queue.processing_key, queue.dead_key)
    client.delete(*keys)
    control.forget(TOPIC_QUEUE_JOB)
    yield queue
    client.delete(*keys)
    control.forget(TOPIC_QUEUE_JOB)
    client.close()


def topic(title: str, turns: int = 2) -> dict[str, Any]:
    return {
        "id": f"t-{uuid.uuid4().hex[:12]}",
        "title": title,
        "min_turns": turns,
        "max_turns": turns,
    }


def queue_job(flow: Flow) -> StoredJob:
    job = JobRepository(flow.engine).get(TOPIC_QUEUE_JOB)
    assert job is not None
    return job


def test_a_drained_topic_counts_for_the_queue_job_which_the_feeder_leaves_running(
    flow: Flow, queue: TopicQueue, celery_session_app: Any
) -> None:
    t = topic("Should cities ban cars?")
    queue.push([json.dumps(t)])
    drain = celery_session_app.tasks["chimera.topics.drain"]

    assert drain.apply().get() == {"started": 1, "duplicates": 0, "dead_lettered": 0}

    cid = conversation_id(f"topics:{t['id']}")
    row = flow.wait(cid)
    assert row.job_id == TOPIC_QUEUE_JOB and row._mapping["metadata"]["job_id"] == TOPIC_QUEUE_JOB
    calls = flow.llm_calls(cid, count=2)
    job = queue_job(flow)
    assert (job.status, job.topic_count, job.fed, job.name) == ("running", 0, 0, "topic queue")
    assert job.spec["max_turns"] == flow.settings.max_conversation_turns
    assert len(job.spec["participants"]) == 2 and "budget_usd" not in job.spec
    fig = job.figures
    assert (fig.started, fig.completed, fig.failed, fig.accepted) == (1, 1, 0, 1)
    assert fig.llm_calls == len(calls) and fig.cost_usd == sum(c.cost_usd for c in calls)
    assert fig.cost_usd > 0

    # The feeder publishes nothing for it and never completes it, round after round.
    repo = JobRepository(flow.engine)
    client = make_redis(flow.settings)
    producer = make_producer(flow.settings)
    try:
        for _ in range(2):
            reports = feed_all(
                repo, producer, flow.settings, JobControl(client, flow.settings, repo.control_row)
            )
            (report,) = [r for r in reports if r.job_id == TOPIC_QUEUE_JOB]
            assert (report.published, report.status, report.resumed) == (0, "running", ())
    finally:
        producer.close(timeout=5)
        client.close()
    after = queue_job(flow)
    assert (after.status, after.fed, after.finished_at) == ("running", 0, None)
    assert after.figures.started == 1


def test_a_paused_queue_job_drains_nothing_and_cannot_be_drained_or_cancelled(
    flow: Flow, queue: TopicQueue, celery_session_app: Any
) -> None:
    drain = celery_session_app.tasks["chimera.topics.drain"]
    assert drain.apply().get() == {"started": 0, "duplicates": 0, "dead_lettered": 0}
    repo = JobRepository(flow.engine)
    client = make_redis(flow.settings)
    control = JobControl(client, flow.settings, repo.control_row)

    assert control_job(repo, control, TOPIC_QUEUE_JOB, "pause").status == "paused"
    t = topic("Is remote work here to stay?")
    queue.push([json.dumps(t)])
    assert drain.apply().get() == {"skipped": f"job {TOPIC_QUEUE_JOB} is paused"}
    assert queue.length() == 1 and flow.inbox.get(f"topics:{t['id']}") is None

    for action in ("drain", "cancel"):
        with pytest.raises(JobConflict, match="topic queue's job") as refused:
            control_job(repo, control, TOPIC_QUEUE_JOB, action)
        assert refused.value.status == "paused"
    assert queue_job(flow).status == "paused"

    assert control_job(repo, control, TOPIC_QUEUE_JOB, "resume").status == "running"
    with pytest.raises(JobConflict):
        control_job(repo, control, TOPIC_QUEUE_JOB, "cancel")
    assert drain.apply().get() == {"started": 1, "duplicates": 0, "dead_lettered": 0}
    assert flow.wait(conversation_id(f"topics:{t['id']}")).job_id == TOPIC_QUEUE_JOB
    assert queue_job(flow).status == "running"
    client.close()


def test_a_failed_queue_conversation_is_replayed_from_its_dead_letter(
    flow: Flow,
    queue: TopicQueue,
    kafka_topics: Settings,
    run_bridge: Any,
    sim_calls: Any,
    celery_session_app: Any,
) -> None:
    s = bridged(flow, kafka_topics)
    bridge = run_bridge(s)
    sim_calls.add_fault("bad_request", provider="google", count=1)
    t = topic("Should cities ban cars?", turns=3)
    eid, cid = f"topics:{t['id']}", conversation_id(f"topics:{t['id']}")
    queue.push([json.dumps(t)])

    assert celery_session_app.tasks["chimera.topics.drain"].apply().get()["started"] == 1

    failed = flow.wait(cid, status="failed")
    assert failed.turn_count == 1 and failed.job_id == TOPIC_QUEUE_JOB
    flow.wait_event(eid, "dead_lettered")
    (letter,) = flow.messages(s.topic_conversation_dlq, eid, count=1)
    assert dict(letter.headers)["x-original-topic"] == f"redis:{queue.key}".encode()
    assert queue_job(flow).figures.failed == 1

    report = replay(s, s.topic_conversation_dlq, filters=Filters(event_id=eid), engine=flow.engine)

    assert report.replayed == 1, report.summary()
    # The bridge took it from conversation.new, as any replayed conversation.
    bridge.wait_for(lambda: bridge.stats.handed_off == 1, what="the replayed event's hand-off")
    done = flow.wait(cid)
    assert done.turn_count == 3 and done.job_id == TOPIC_QUEUE_JOB
    assert [t.turn_index for t in flow.turns(cid)] == [0, 1, 2]
    assert flow.event_status(eid) == "done"
    fig = queue_job(flow).figures
    assert (fig.started, fig.completed, fig.failed, fig.accepted) == (1, 1, 0, 1)
