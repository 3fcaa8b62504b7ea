"""Beat's drain task over a topic queue holding poison among good topics: the real task,
the embedded worker running what it hands off, Redis, Postgres and the simulator."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chimera.conversation.topic_queue import TopicQueue
from chimera.events.ids import conversation_id
from chimera.redis_client import make_redis
from tests.tasks.conftest import Flow

#: Deep enough for the JSON parser's RecursionError, small enough for the item limit.
NESTED = '{"title": "Deep", "metadata": {"x": ' + "[" * 30_000 + "]" * 30_000 + "}}"
OVERSIZE = json.dumps({"title": "Big", "metadata": {"pad": "x" * 70_000}})


@pytest.fixture
def queue(flow: Flow) -> Iterator[TopicQueue]:
    """The session's topic queue (its key is the session's own), empty before and after."""
    client = make_redis(flow.settings)
    queue = TopicQueue(client, flow.settings)
    keys = (queue.key, queue.processing_key, queue.dead_key)
    client.delete(*keys)
    yield queue
    client.delete(*keys)
    client.close()


def topic(title: str) -> dict[str, Any]:
    return {"id": f"t-{uuid.uuid4().hex[:12]}", "title": title, "min_turns": 2, "max_turns": 2}


def test_the_drain_task_dead_letters_poison_and_starts_the_rest(
    flow: Flow, queue: TopicQueue, celery_session_app: Any
) -> None:
    good = [topic("Should cities ban cars?"), topic("Is remote work here to stay?")]
    client = make_redis(flow.settings)
    client.rpush(
        queue.key,
        json.dumps(good[0]),
        NESTED,
        OVERSIZE,
        '{"title": "Cars", ',
        b"\xff\xfe not UTF-8",
        json.dumps(good[1]),
    )
    drain = celery_session_app.tasks["chimera.topics.drain"]

    first = drain.apply().get()

    assert first == {"started": 2, "duplicates": 0, "dead_lettered": 4}
    assert client.llen(queue.processing_key) == 0 and queue.length() == 0
    total, dead = queue.dead_letters()
    assert total == 4
    assert [d["reason"] for d in reversed(dead)] == [
        "invalid_json",  # nested too deeply
        "too_large",
        "invalid_json",
        "undecodable",
    ]
    assert "nested too deeply" in dead[-1]["error"]
    assert dead[-2]["bytes"] == len(OVERSIZE) and len(dead[-2]["item"]) < 300
    for t in good:
        row = flow.wait(conversation_id(f"topics:{t['id']}"))
        assert row.turn_count == 2 and row.topic_title == t["title"]
        assert flow.event_status(f"topics:{t['id']}") == "done"

    # Nothing is left to read again: the poison is not retried, the topics not restarted.
    again = drain.apply().get()
    assert again == {"started": 0, "duplicates": 0, "dead_lettered": 0}
    assert queue.dead_letters()[0] == 4
    client.close()
