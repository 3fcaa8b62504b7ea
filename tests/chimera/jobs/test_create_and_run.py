"""Jobs on the real services: created once, fed through Kafka, run by a worker, counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from chimera.events.ids import conversation_id, job_event_id
from chimera.jobs.feed import feed_job
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job, inline_topics
from chimera.jobs.topics import read_topics
from chimera.kafka.clients import make_producer
from chimera.settings import Settings, to_env
from tests.bridges import conftest as bridge_fixtures
from tests.bridges.conftest import CELERYCONFIG_DEPRECATION, read_topic
from tests.chimera.test_cli import chimera
from tests.helpers import wait_for
from tests.tasks import conftest as task_fixtures
from tests.tasks.conftest import Flow

pytestmark = pytest.mark.filterwarnings(CELERYCONFIG_DEPRECATION)
run_bridge = bridge_fixtures.run_bridge
_keep_current_celery_app = bridge_fixtures._keep_current_celery_app
flow = task_fixtures.flow
session_topics = task_fixtures.session_topics

PAIR = [
    {"provider": "anthropic", "model": "claude-sonnet-5-5", "name": "Ana"},
    {"provider": "google", "model": "gemini-3.5-flash", "name": "Ben"},
]


@pytest.fixture
def producer(kafka_topics: Settings) -> Iterator[Any]:
    p = make_producer(kafka_topics)
    yield p
    p.close(timeout=5)


def test_creating_the_same_job_twice_creates_nothing_twice(
    kafka_topics: Settings, db: Any, producer: Any, tmp_path: Path
) -> None:
    path = tmp_path / "topics.jsonl"
    path.write_text('{"title": "Cars", "lang": "en"}\n{"title": "Bikes"}\n{"title": "Trains"}\n')
    repo = JobRepository(db)
    spec = {"name": "transport", "max_turns": 2, "min_turns": 2, "participants": PAIR}
    first = create_job(repo, producer, kafka_topics, spec, lambda: read_topics(path))
    again = create_job(repo, producer, kafka_topics, dict(spec), lambda: read_topics(path))
    assert first.created and not again.created
    assert first.job.id == again.job.id and first.feed.published == 3 and again.feed.published == 0
    records = read_topic(kafka_topics, kafka_topics.topic_conversation_new, at_least=3)
    events = [json.loads(r.value) for r in records]
    assert sorted(e["event_id"] for e in events) == [
        job_event_id(first.job.id, i) for i in range(3)
    ]
    cars = next(e for e in events if e["topic"]["title"] == "Cars")
    assert cars["job_id"] == first.job.id
    assert cars["metadata"]["topic_metadata"] == {"lang": "en"}
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM job_topics")).scalar_one() == 3
    # Another topic is another job.
    other = create_job(
        repo, producer, kafka_topics, spec, inline_topics(["Cars", "Bikes", "Trains", "Boats"])
    )
    assert other.created and other.job.id != first.job.id


def test_cli_create_reads_stdin_and_refuses_a_bad_line(
    kafka_topics: Settings, db: Any, tmp_path: Path
) -> None:
    env = to_env(kafka_topics)
    ok = _cli_stdin(env, "Cars\nBikes\n", "--name", "two", "--turns", "2-3", "--target", "5")
    assert ok.returncode == 0, ok.stderr
    jid = ok.stdout.strip().splitlines()[-1]
    status = chimera("jobs", "status", jid, "--json", env=env)
    assert status.returncode == 0, status.stderr
    job = json.loads(status.stdout)
    assert job["topic_count"] == 2 and job["spec"]["target"] == 5 and job["status"] == "pending"
    assert job["spec"]["min_turns"] == 2 and job["spec"]["max_turns"] == 3
    assert jid in chimera("jobs", "list", env=env).stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{"title": 3}\n')
    refused = chimera("jobs", "create", "--name", "x", "--topics", str(bad), env=env)
    assert refused.returncode == 2 and "bad.jsonl line 2: title" in refused.stderr
    model = chimera(
        "jobs", "create", "--name", "x", "--topics", str(bad),
        "--participant", "anthropic:nope", "--participant", "google:gemini-3.5-flash", env=env,
    )  # fmt: skip
    assert model.returncode == 2 and "participants.0.model" in model.stderr
    assert chimera("jobs", "status", "job-none", env=env).returncode == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 1


def _cli_stdin(env: dict[str, str], data: str, *args: str) -> Any:
    import os
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    return subprocess.run(
        [sys.executable, "-m", "chimera", "jobs", "create", "--topics", "-", *args],
        input=data,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=os.environ | env,
        timeout=120,
        check=False,
    )


def _run_to_end(repo: JobRepository, producer: Any, settings: Settings, jid: str) -> Any:
    def finished() -> bool:
        job = repo.get(jid)
        assert job is not None
        return feed_job(repo, producer, settings, job).status == "completed"

    wait_for(finished, timeout_s=180, interval_s=0.5, what="the job to complete")
    job = repo.get(jid)
    assert job is not None
    return job


def _database_figures(db: Any, jid: str) -> dict[str, Any]:
    with db.connect() as conn:
        convs = conn.execute(
            text("SELECT id, status FROM conversations WHERE job_id = :j"), {"j": jid}
        ).all()
        cost, tokens_in = conn.execute(
            text(
                "SELECT coalesce(sum(cost_usd), 0), coalesce(sum(input_tokens), 0) FROM llm_calls"
                " WHERE owner_id IN (SELECT id FROM conversations WHERE job_id = :j)"
            ),
            {"j": jid},
        ).one()
    return {"conversations": convs, "cost": Decimal(cost), "input_tokens": int(tokens_in)}


def test_a_small_job_runs_to_completed_with_figures_from_the_rows(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, producer: Any, sim_calls: Any
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"jobs-{kafka_topics.topic_conversation_new}"}
    )
    repo = JobRepository(flow.engine)
    spec = {"name": "three", "min_turns": 2, "max_turns": 2, "participants": PAIR}
    made = create_job(repo, producer, s, spec, inline_topics(["Cars", "Bikes", "Trains"]))
    run_bridge(s)
    job = _run_to_end(repo, producer, s, made.job.id)
    for i in range(3):  # call rows are written in batches, a moment after the turns
        flow.llm_calls(conversation_id(job_event_id(job.id, i)), count=2)
    rows = _database_figures(flow.engine, job.id)
    job = repo.get(job.id) or job
    fig = job.figures
    assert job.status == "completed" and job.started_at is not None and job.finished_at is not None
    assert sorted(c for c, _ in rows["conversations"]) == sorted(
        conversation_id(job_event_id(job.id, i)) for i in range(3)
    )
    assert fig.started == 3 == fig.completed == fig.accepted and fig.failed == 0
    assert fig.yield_ == 1.0 and fig.rejected == {}
    assert fig.cost_usd == rows["cost"] > 0 and fig.input_tokens == rows["input_tokens"]
    assert fig.cost_per_accepted_usd == rows["cost"] / 3
    assert fig.llm_calls == sim_calls.calls().total == 6


def test_a_target_cycles_the_topics_until_reached(
    flow: Flow, kafka_topics: Settings, run_bridge: Any, producer: Any
) -> None:
    s = kafka_topics.model_copy(
        update={"kafka_consumer_group_id": f"jobs-{kafka_topics.topic_conversation_new}"}
    )
    repo = JobRepository(flow.engine)
    spec = {"name": "four", "min_turns": 2, "max_turns": 2, "participants": PAIR, "target": 4}
    made = create_job(repo, producer, s, spec, inline_topics(["Cars", "Bikes"]))
    assert made.feed.published == 4
    run_bridge(s)
    job = _run_to_end(repo, producer, s, made.job.id)
    assert job.figures.accepted == 4 and job.fed == 4
    with flow.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT topic_title, participants, metadata FROM conversations WHERE job_id = :j"),
            {"j": job.id},
        ).all()
    assert sorted(r.topic_title for r in rows) == ["Bikes", "Bikes", "Cars", "Cars"]
    first_speaker = {r.metadata["job_cycle"]: r.participants[0]["name"] for r in rows}
    assert first_speaker == {0: "Ana", 1: "Ben"}
