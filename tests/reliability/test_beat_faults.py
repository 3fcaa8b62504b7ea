"""Beat under faults: two beats running at once, and beat SIGKILLed and started again.

Beat sends the periodic work (the topic drain, the job feeder, the reconciler, the
canary).  Two beats each send every round; the rounds' gate (``chimera/rounds.py``)
lets one of each kind run per interval, so nothing runs twice as often and nothing is
started, published or paid twice.  A beat killed and restarted on its (possibly torn)
schedule file goes on sending; work that arrived meanwhile is picked up.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chimera.conversation.topic_queue import TopicQueue
from chimera.events.ids import job_event_id, topic_event_id
from chimera.events.letters import read_dead_letters
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job
from chimera.kafka.clients import make_consumer, make_producer
from chimera.redis_client import make_redis
from tests.helpers import wait_for
from tests.reliability.harness import invariants
from tests.reliability.harness.procs import ManagedProcess, beat_argv
from tests.reliability.harness.results import record
from tests.reliability.harness.stack import Stack

pytestmark = [pytest.mark.subprocess_worker, pytest.mark.timeout(400)]

PAIR = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5", "name": "Ana"},
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben"},
]

#: Rounds every second (the reconciler every two, FAST_TIMINGS), a job fed one
#: conversation per round: many rounds, and many chances to double, within a test.
BEAT_TIMINGS: dict[str, Any] = {
    "topics_drain_interval_s": 1.0,
    "jobs_feed_interval_s": 1.0,
    "jobs_feed_batch": 1,
    "topics_batch": 2,
}

SUCCEEDED = re.compile(r"Task (chimera\.[a-z.]+)\[[^\]]+\] succeeded in [0-9.e-]+s: (\{.*\})")


def push_topics(stack: Stack, n: int) -> list[str]:
    """``n`` topics pushed to the topic queue; their event ids."""
    topics = [
        {"id": f"t-{uuid.uuid4().hex[:10]}", "title": f"Trains or buses? ({i})"} for i in range(n)
    ]
    client = make_redis(stack.settings)
    try:
        TopicQueue(client, stack.settings).push(
            [json.dumps(t | {"min_turns": 2, "max_turns": 2}) for t in topics]
        )
    finally:
        client.close()
    return [topic_event_id(t) for t in topics]


def make_job(stack: Stack, n: int) -> list[str]:
    """A job of ``n`` two-turn conversations; creating it publishes the first
    (``jobs_feed_batch`` 1), beat's feeder the rest, one per round."""
    spec = {"name": f"beat-{uuid.uuid4().hex[:6]}", "min_turns": 2, "max_turns": 2}
    topics = [{"title": f"Ferries or bridges? ({i})"} for i in range(n)]
    producer = make_producer(stack.settings)
    try:
        created = create_job(
            JobRepository(stack.engine),
            producer,
            stack.settings,
            spec | {"participants": PAIR},
            lambda: iter(topics),
        )
    finally:
        producer.close()
    assert created.created and created.feed.published == 1
    return [job_event_id(created.job.id, p) for p in range(n)]


def start_beat(stack: Stack, schedule: str) -> ManagedProcess:
    """A beat with a schedule file of its own (two beats cannot share one)."""
    path: Path = stack.workdir / "state" / schedule
    path.parent.mkdir(parents=True, exist_ok=True)
    return stack._spawn("beat", beat_argv(path), {})


def published_ids(stack: Stack) -> Counter[str]:
    """How many times each event id was published to `conversation.new`."""
    consumer = make_consumer(stack.settings, fetch_max_wait_ms=50)
    try:
        records = read_dead_letters(consumer, stack.settings.topic_conversation_new).records
    finally:
        consumer.close()
    return Counter(json.loads(r.value)["event_id"] for r in records)


def rounds(log: str) -> dict[str, list[dict[str, Any]]]:
    """What each periodic task returned, per task name, from a worker's log."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, value in SUCCEEDED.findall(log):
        out.setdefault(name, []).append(ast.literal_eval(value))
    return out


def test_two_beats_at_once_start_publish_and_pay_everything_once(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Two beats send every round for a whole run of queued topics and a job: each
    topic is started once, each job event published and handed off once, every
    conversation's turns paid once; the second beat's rounds are turned away."""
    sim_calls.configure(ttft_ms=50)
    stack = make_stack(**BEAT_TIMINGS)
    worker = stack.start_worker()
    beats = [start_beat(stack, "beat-a"), start_beat(stack, "beat-b")]
    stack.start_bridge()
    topic_ids = push_topics(stack, 8)
    job_ids = make_job(stack, 5)
    ids = topic_ids + job_ids
    stack.wait_settled(ids, timeout_s=240)
    # A few more rounds of both beats over the settled work: nothing starts again.
    wait_for(
        lambda: len(rounds(worker.log()).get("chimera.reconcile", [])) >= 8,
        timeout_s=60,
        interval_s=0.5,
        what="more reconcile rounds",
    )

    report = invariants.check(
        stack, sim_calls, event_ids=ids, allowed_dead_letters=set(), allowed_extra_calls=0
    )
    log = worker.log()
    done = rounds(log)
    drains = [r for r in done.get("chimera.topics.drain", []) if "started" in r]
    assert sum(r["started"] for r in drains) == len(topic_ids), drains
    assert sum(r["duplicates"] for r in drains) == 0, drains
    published = published_ids(stack)
    assert {e: published[e] for e in job_ids} == dict.fromkeys(job_ids, 1)
    starts = Counter(re.findall(r"Task chimera\.conversation\.start\[([^\]]+)\] received", log))
    assert starts and max(starts.values()) == 1, starts  # each hand-off sent once
    for beat in beats:
        beat.assert_alive()
        for task in ("chimera.topics.drain", "chimera.jobs.feed", "chimera.reconcile"):
            assert f"({task})" in beat.log(), f"{beat.name} never sent {task}"
    taken = {
        name: sum(r == {"skipped": "round taken"} for r in results)
        for name, results in done.items()
        if name in ("chimera.topics.drain", "chimera.jobs.feed", "chimera.reconcile")
    }
    assert all(taken.get(n, 0) >= 1 for n in ("chimera.topics.drain", "chimera.reconcile")), taken
    record(
        "two beats at once",
        request.node.name,
        happened="both beats sent every round; the rounds' gate ran one of each kind per "
        "interval and turned the other away; every topic started once, every job event "
        "published once, every turn paid once",
        rounds_run={n: len(r) - taken.get(n, 0) for n, r in done.items()},
        rounds_turned_away=taken,
        **report.as_dict(),
    )


def test_beat_sigkilled_and_restarted_resumes_periodic_work(
    make_stack: Any, sim_calls: Any, request: pytest.FixtureRequest
) -> None:
    """Beat dies (SIGKILL, its schedule file as it was) while topics and a job are
    being worked; what arrives while it is down waits; a new beat on the same schedule
    file drains and feeds it, and a topic pushed after the restart is drained too."""
    sim_calls.configure(ttft_ms=50)
    stack = make_stack(**BEAT_TIMINGS)
    stack.start_all()
    [beat] = [p for p in stack.processes if p.name.startswith("beat")]
    before = push_topics(stack, 3)
    stack.wait_settled(before, timeout_s=120)
    beat.kill()
    job_ids = make_job(stack, 4)
    during = push_topics(stack, 3)
    again = stack.start_beat()
    after = push_topics(stack, 2)
    ids = before + during + job_ids + after
    stack.wait_settled(ids, timeout_s=240)

    report = invariants.check(
        stack, sim_calls, event_ids=ids, allowed_dead_letters=set(), allowed_extra_calls=0
    )
    again.assert_alive()
    published = published_ids(stack)
    assert {e: published[e] for e in job_ids} == dict.fromkeys(job_ids, 1)
    record(
        "beat SIGKILLed and restarted",
        request.node.name,
        happened="work pushed while beat was down waited; the restarted beat (same "
        "schedule file) drained the queue and fed the job; nothing lost or paid twice",
        **report.as_dict(),
    )
