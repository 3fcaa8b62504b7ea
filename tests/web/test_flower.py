"""Flower as the stack runs it, against a real worker: its HTTP API shows the worker, our
prefixed queues, and each task by name with the ids of its work."""

from __future__ import annotations

import ast
import secrets
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import redis
from pydantic import SecretStr

from chimera.codec import payload_hash
from chimera.events.ids import conversation_id, finalize_task_id, handoff_task_id, turn_task_id
from chimera.events.inbox import Inbox
from chimera.kafka.topics import ensure_topics
from chimera.settings import Settings
from chimera.stack.checks import celery_client, run_canary
from tasks.handoff import send_handoff
from tests.helpers import wait_for
from tests.web.flower_process import FlowerProcess, serve_flower_fixture  # noqa: F401


def tasks_of(flower: FlowerProcess, name: str, worker: str) -> dict[str, dict[str, Any]]:
    """Flower's record of the tasks called ``name`` that ``worker`` finished, by task id."""
    found: dict[str, dict[str, Any]] = flower.get_json(
        f"/api/tasks?taskname={name}&workername={quote(worker)}"
    )
    return {tid: t for tid, t in found.items() if t["state"] == "SUCCESS"}


def args(task: dict[str, Any]) -> list[Any]:
    """A task's positional arguments as Flower shows them (the sender's repr)."""
    return list(ast.literal_eval(task["args"]))


@pytest.mark.subprocess_worker
def test_flower_shows_the_worker_and_its_tasks_by_name_and_ids(
    serve_flower: Callable[..., FlowerProcess],
    worker_process: Callable[..., Any],
    kafka_broker: Settings,
    db: Any,
    sim_calls: Any,
) -> None:
    ensure_topics(kafka_broker)
    worker = worker_process(env={"CHIMERA_CELERY_TASK_EVENTS": "true"})
    name = run_canary(worker.settings, timeout_s=10)["worker"]
    credentials = f"ops:{secrets.token_urlsafe(12)}"
    flower = serve_flower(worker.settings, flower_basic_auth=SecretStr(credentials))

    # Everything but /healthcheck asks for the credentials; the secret is not on the command line.
    assert flower.get("/api/workers", auth=False)[0] == 401
    assert flower.get("/workers", auth=False)[0] == 401
    assert flower.get("/healthcheck", auth=False) == (200, b"OK")
    assert not any(credentials in arg for arg in flower.proc.args)

    # The worker, from its events (heartbeats) and by remote control (inspect).
    wait_for(
        lambda: flower.get_json("/api/workers?status=true").get(name),
        timeout_s=15,
        what=f"Flower to hear from {name}",
    )
    inspected = flower.get_json("/api/workers?refresh=true")[name]
    assert [q["name"] for q in inspected["active_queues"]] == [worker.settings.celery_queue]
    assert {"chimera.conversation.turn", "chimera.system.canary"} <= set(inspected["registered"])

    # A conversation of two turns, handed to the worker the way the bridge does it.
    event = {"event_id": f"evt-{uuid.uuid4().hex[:12]}", "topic": "Should cities ban cars?"}
    event |= {"min_turns": 2, "max_turns": 2}
    Inbox(db).accept(
        event_id=event["event_id"],
        kind="conversation",
        payload=event,
        payload_hash=payload_hash(event),
    )
    app = celery_client(worker.settings)
    try:
        send_handoff(app, "conversation", event["event_id"])
    finally:
        app.close()
    cid = conversation_id(event["event_id"])
    run_canary(worker.settings, timeout_s=10)

    turns = wait_for(
        lambda: (
            len(tasks_of(flower, "chimera.conversation.turn", name)) == 2
            and tasks_of(flower, "chimera.conversation.turn", name)
        ),
        timeout_s=30,
        interval_s=0.2,
        what="Flower to show both turns succeeded",
    )
    assert {tid: args(t) for tid, t in turns.items()} == {
        turn_task_id(cid, 0): [cid, 0],
        turn_task_id(cid, 1): [cid, 1],
    }
    assert {t["worker"] for t in turns.values()} == {name}

    start = tasks_of(flower, "chimera.conversation.start", name)
    assert args(start[handoff_task_id("conversation", event["event_id"])]) == [event["event_id"]]
    finalize = wait_for(
        lambda: tasks_of(flower, "chimera.conversation.finalize", name),
        timeout_s=15,
        what="Flower to show the finalize step",
    )
    assert args(finalize[finalize_task_id(cid)]) == [cid]
    canaries = wait_for(
        lambda: tasks_of(flower, "chimera.system.canary", name), what="Flower to show the canary"
    )
    assert [t["kwargs"].startswith("{'source': 'stack'") for t in canaries.values()] == [True]

    # Flower's own task listing can be searched by the conversation id.
    found = flower.get_json(f"/api/tasks?search={cid}")
    assert set(turns) | {finalize_task_id(cid)} <= set(found)


def test_flower_counts_messages_in_our_prefixed_queues(
    serve_flower: Callable[..., FlowerProcess], redis_ns: Settings
) -> None:
    """No worker consumes the queue: Flower must read the lengths under the key prefix."""
    settings = redis_ns.model_copy(update={"celery_queue": f"parked-{secrets.token_hex(3)}"})
    app = celery_client(settings)
    try:
        for _ in range(3):
            app.send_task("chimera.system.canary", kwargs={"source": "parked"}, ignore_result=True)
    finally:
        app.close()
    client = redis.Redis.from_url(settings.celery_broker_url)
    try:
        assert client.llen(settings.redis_key_prefix + settings.celery_queue) == 3
        assert not client.exists(settings.celery_queue)
    finally:
        client.close()

    flower = serve_flower(settings, flower_basic_auth=SecretStr("ops:parked"))
    lengths = flower.get_json("/api/queues/length")
    assert lengths == {"active_queues": [{"name": settings.celery_queue, "messages": 3}]}
