"""A resume or a budget raise feeds the job at once: with a real worker and no beat
(nothing runs the feeder's rounds), the job's parked conversations go on and complete.

Only the feed that the control sends (``chimera.jobs.feed`` for that job) can hand them
back here: the test never feeds, and the embedded worker runs no beat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from chimera.jobs.control import JobControl
from chimera.jobs.repository import JobRepository, StoredJob
from chimera.jobs.service import control_job, create_job, inline_topics
from chimera.settings import Settings, to_env
from tests.chimera.jobs import test_controls as controls
from tests.chimera.jobs.test_controls import PAIR, TOPICS, _calls
from tests.chimera.test_cli import chimera
from tests.helpers import wait_for
from tests.tasks.conftest import Flow
from web.app import close_app, create_app

pytestmark = controls.pytestmark
run_bridge = controls.run_bridge
_keep_current_celery_app = controls._keep_current_celery_app
flow = controls.flow
session_topics = controls.session_topics
producer = controls.producer
setup = controls.setup


@pytest.fixture
def http(setup: Any) -> Iterator[FlaskClient]:
    app = create_app(setup[0])
    yield app.test_client()
    close_app(app)


def _job(repo: JobRepository, jid: str) -> StoredJob:
    job = repo.get(jid)
    assert job is not None
    return job


def _wait_parked(repo: JobRepository, control: JobControl, jids: list[str], n: int) -> None:
    """Every conversation of each job started and waits parked (none half-way)."""

    def parked() -> bool:
        for jid in jids:
            job = _job(repo, jid)
            if job.figures.started != n or job.figures.running != len(control.parked(jid)):
                return False
        return True

    wait_for(parked, timeout_s=180, interval_s=0.3, what="the jobs' conversations to park")


def _wait_completed(repo: JobRepository, jid: str, n: int) -> StoredJob:
    wait_for(
        lambda: _job(repo, jid).figures.completed == n,
        timeout_s=180,
        interval_s=0.3,
        what=f"the {n} conversations of {jid} to complete",
    )
    return _job(repo, jid)


def _cli(s: Settings, *args: str) -> str:
    done = chimera("jobs", *args, env=to_env(s))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_resume_over_http_or_the_cli_hands_the_parked_conversations_back_at_once(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any, http: FlaskClient
) -> None:
    s, repo, rt = setup
    spec = {"min_turns": 2, "max_turns": 2, "participants": PAIR}
    over_http, over_cli = (
        create_job(repo, producer, s, spec | {"name": name}, inline_topics(TOPICS[:3])).job.id
        for name in ("http", "cli")
    )
    for jid in (over_http, over_cli):
        assert control_job(repo, rt.job_control, jid, "pause").status == "paused"
    run_bridge(s)
    _wait_parked(repo, rt.job_control, [over_http, over_cli], 3)
    assert len(rt.job_control.parked(over_http)) == 3 == len(rt.job_control.parked(over_cli))

    resumed = http.post(f"/jobs/{over_http}/resume")
    assert resumed.status_code == 200 and resumed.json["status"] == "running"
    job = _wait_completed(repo, over_http, 3)
    assert job.figures.failed == 0 and rt.job_control.parked(over_http) == []
    assert _calls(flow.engine, over_http)[0] == 6  # each turn paid once
    # The other job was not fed: its conversations still wait, nothing paid.
    assert len(rt.job_control.parked(over_cli)) == 3 and _calls(flow.engine, over_cli)[0] == 0

    assert f"job {over_cli}: running" in _cli(s, "resume", over_cli)
    job = _wait_completed(repo, over_cli, 3)
    assert job.figures.failed == 0 and rt.job_control.parked(over_cli) == []
    assert _calls(flow.engine, over_cli)[0] == 6


def test_a_budget_raise_over_http_or_the_cli_hands_the_parked_conversations_back_at_once(
    flow: Flow, setup: Any, run_bridge: Any, producer: Any, http: FlaskClient
) -> None:
    s, repo, rt = setup
    budget = 0.005  # a call's worst case is ~0.0045 USD: a few calls fit, not 8
    spec = {"min_turns": 2, "max_turns": 2, "participants": PAIR, "budget_usd": budget}
    over_http, over_cli = (
        create_job(repo, producer, s, spec | {"name": name}, inline_topics(TOPICS)).job.id
        for name in ("http", "cli")
    )
    run_bridge(s)
    _wait_parked(repo, rt.job_control, [over_http, over_cli], 4)
    for jid in (over_http, over_cli):
        job = _job(repo, jid)
        assert job.status == "budget_exhausted" and job.figures.completed < 4
        assert job.figures.running > 0 and job.figures.failed == 0

    raised = http.patch(f"/jobs/{over_http}", json={"budget_usd": 1.0})
    assert raised.status_code == 200 and raised.json["status"] == "running"
    _wait_completed(repo, over_http, 4)
    assert rt.job_control.parked(over_http) == []
    assert _calls(flow.engine, over_http)[0] == 8  # each turn paid once
    assert _job(repo, over_cli).figures.completed < 4 and rt.job_control.parked(over_cli)

    assert f"job {over_cli}: running" in _cli(s, "update", over_cli, "--budget", "1.0")
    _wait_completed(repo, over_cli, 4)
    assert rt.job_control.parked(over_cli) == []
    assert _calls(flow.engine, over_cli)[0] == 8
