"""A worker process serves its own /metrics (CHIMERA_METRICS_PORT), and refuses an open one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from chimera.codec import payload_hash
from chimera.events.ids import conversation_id, handoff_task_id
from tests.conftest import PROJECT_ROOT
from tests.helpers import ANY_ADDRESS, free_port, http_get, wait_for
from tests.tasks.conftest import Flow

CALLS = re.compile(r"^chimera_llm_calls_total\{[^}]*\} (\d+(?:\.\d+)?)$", re.MULTILINE)


@pytest.mark.subprocess_worker
def test_worker_serves_the_llm_calls_of_its_tasks(
    flow: Flow, sim_calls: Any, worker_process: Any
) -> None:
    port = free_port()
    token = "w" * 32
    worker = worker_process(env={"CHIMERA_METRICS_PORT": str(port), "CHIMERA_METRICS_TOKEN": token})
    url = f"http://127.0.0.1:{port}/metrics"
    assert f"the worker serves its metrics on {url}" in worker.log()
    assert http_get(url)[0] == 401  # a token is set: a scrape must carry it

    event = flow.event(min_turns=2, max_turns=2)
    flow.inbox.accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
    )
    flow.app.send_task(
        "chimera.conversation.start",
        args=[event["event_id"]],
        task_id=handoff_task_id("conversation", event["event_id"]),
        queue=worker.settings.celery_queue,
        ignore_result=True,
    )
    cid = conversation_id(event["event_id"])
    flow.wait(cid)
    stored = flow.llm_calls(cid, count=2)

    def counted() -> float:
        status, body = http_get(url, token)
        assert status == 200, body
        return sum(float(n) for n in CALLS.findall(body))

    # Every call of the conversation was made in this worker, and it counts them.
    total = wait_for(lambda: counted() >= len(stored) and counted(), what="the calls counted")
    assert total >= len(stored)


@pytest.mark.subprocess_worker
def test_worker_refuses_an_open_metrics_listener_on_the_network(redis_server: None) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CHIMERA_API_TOKEN", "CHIMERA_METRICS_TOKEN"}
    }
    env |= {"CHIMERA_METRICS_PORT": str(free_port()), "CHIMERA_METRICS_HOST": ANY_ADDRESS}
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "--loglevel", "INFO"]
    done = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "CHIMERA_METRICS_HOST: 0.0.0.0 is not a loopback address" in done.stderr


@pytest.mark.subprocess_worker
@pytest.mark.parametrize(
    ("extra", "env", "named"),
    [
        # -P overrides the settings (except "prefork", Celery's default, which it takes
        # for "not given"): the pool the worker would run is what is checked.
        (["-P", "processes", "--concurrency", "1"], {}, "the prefork pool is not supported"),
        ([], {"CHIMERA_CELERY_POOL": "prefork"}, "CHIMERA_CELERY_POOL"),
    ],
)
def test_a_prefork_worker_is_refused_at_start(
    redis_server: None, extra: list[str], env: dict[str, str], named: str
) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "--loglevel", "INFO"]
    done = subprocess.run(
        [*argv, *extra],
        cwd=PROJECT_ROOT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert named in done.stderr + done.stdout
    assert "ready." not in done.stdout + done.stderr
